import Foundation
import CZlib
import CZstd
import CSkiffSys
import SkiffSys

/// A byte source over a layer blob: plain tar, gzip through zlib, or zstd. The sha256 of what it
/// produced is the layer's diff ID. The compressed bytes come from `source` (a file in the
/// content store, or a download in progress: see LayerFeed); `source(n)` returns up to n bytes,
/// none only at the end.
final class LayerStream {
    let source: (Int) throws -> [UInt8]
    let gzip: Bool
    var zstd: OpaquePointer?
    var zstdPending = 1
    var strm = z_stream()
    var input = [UInt8]()
    var inOff = 0
    var inputEOF = false
    var finished = false
    let digest = Digest()

    convenience init(path: String, mediaType: String) throws {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw ManagerError("open layer", path, "cannot open") }
        try self.init(label: path, mediaType: mediaType) { n in [UInt8](fh.readData(ofLength: n)) }
    }

    init(label: String, mediaType: String, source: @escaping (Int) throws -> [UInt8]) throws {
        self.source = source
        gzip = mediaType.hasSuffix("gzip") || mediaType.hasSuffix("tar.gzip") || mediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        if mediaType.hasSuffix("zstd") {
            zstd = ZSTD_createDStream()
            guard zstd != nil else { throw ManagerError("unpack", label, "zstd: cannot create a stream") }
            _ = ZSTD_initDStream(zstd)
        }
        if gzip {
            // 15 + 32: a gzip or zlib header, detected.
            let rc = inflateInit2_(&strm, 47, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            if rc != Z_OK { throw ManagerError("unpack", label, "zlib init failed (\(rc))") }
        }
    }

    deinit {
        if gzip { inflateEnd(&strm) }
        if let zstd { ZSTD_freeDStream(zstd) }
    }

    func read(_ n: Int) throws -> [UInt8] {
        if zstd != nil { return try readZstd(n) }
        if !gzip {
            let d = try source(n)
            digest.update(d)
            return d
        }
        if finished { return [] }
        var out = [UInt8](repeating: 0, count: n)
        var produced = 0
        while produced == 0 && !finished {
            try refill()
            let avail = input.count - inOff
            let rc: Int32 = input.withUnsafeMutableBufferPointer { inp in
                out.withUnsafeMutableBufferPointer { o in
                    strm.next_in = avail > 0 ? inp.baseAddress! + inOff : nil
                    strm.avail_in = UInt32(avail)
                    strm.next_out = o.baseAddress! + produced
                    strm.avail_out = UInt32(n - produced)
                    let r = inflate(&strm, Z_NO_FLUSH)
                    produced = n - Int(strm.avail_out)
                    return r
                }
            }
            inOff = input.count - Int(strm.avail_in)
            if rc == Z_STREAM_END { finished = true; break }
            if rc == Z_BUF_ERROR && inputEOF && produced == 0 { throw ManagerError("unpack", nil, "truncated gzip stream") }
            if rc != Z_OK && rc != Z_BUF_ERROR { throw ManagerError("unpack", nil, "corrupt gzip data (zlib \(rc))") }
        }
        let d = Array(out[0..<produced])
        digest.update(d)
        return d
    }

    /// The next compressed chunk once the current one is used up.
    func refill() throws {
        if inOff == input.count && !inputEOF {
            input = try source(1 << 20)
            inOff = 0
            if input.isEmpty { inputEOF = true }
        }
    }

    func readZstd(_ n: Int) throws -> [UInt8] {
        if finished { return [] }
        var out = [UInt8](repeating: 0, count: n)
        var produced = 0
        while produced == 0 && !finished {
            try refill()
            let drained = inputEOF && inOff == input.count
            let before = produced
            let rc: Int = input.withUnsafeBytes { inp in
                out.withUnsafeMutableBytes { o in
                    var ib = ZSTD_inBuffer(src: inp.baseAddress, size: inp.count, pos: inOff)
                    var ob = ZSTD_outBuffer(dst: o.baseAddress, size: n, pos: produced)
                    let r = ZSTD_decompressStream(zstd, &ob, &ib)
                    inOff = ib.pos
                    produced = ob.pos
                    return r
                }
            }
            if ZSTD_isError(rc) != 0 { throw ManagerError("unpack", nil, "corrupt zstd data (\(String(cString: ZSTD_getErrorName(rc))))") }
            // Input done and nothing more came out: the end (rc != 0 means a frame was cut short).
            if !drained || produced != before { zstdPending = rc }
            if drained && produced == before {
                // 0 from the last real step means the frame ended cleanly.
                if zstdPending != 0 { throw ManagerError("unpack", nil, "truncated zstd stream") }
                finished = true
            }
        }
        let d = Array(out[0..<produced])
        digest.update(d)
        return d
    }

    /// Drains what is left (so the digest covers the whole stream) and returns it.
    func finish() throws -> String {
        while !(try read(1 << 20)).isEmpty {}
        return digest.finalize()
    }
}

/// Applies an image's layers to a snapshotter (containerd's unpacker): each layer from the content
/// store, decompressed and checked against its diff ID, becomes a committed snapshot named by
/// its chain ID on top of the one before.
public struct Unpacker {
    let content: ContentStore
    let snapshots: Snapshotter

    public init(content: ContentStore, snapshots: Snapshotter) { self.content = content; self.snapshots = snapshots }

    /// Unpacks an image's layers as committed snapshots (skipping those already there) and
    /// returns the top chain ID. Each layer's uncompressed digest must match the config's diff ID.
    public func unpack(_ manifest: ImageManifest, _ config: ImageConfig) throws -> String {
        guard manifest.layers.count == config.rootfs.diff_ids.count else {
            throw ManagerError("unpack", manifest.config.digest, "\(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff IDs")
        }
        // The first chain ID is the first diff ID as written: a snapshot's name ("base") would
        // put the image on top of that snapshot, a path would name a lock file outside .locks.
        for d in config.rootfs.diff_ids { try Snapshotter.requireChainID(d) }
        var parent: String?
        for ((layer, diffID), chainID) in zip(zip(manifest.layers, config.rootfs.diff_ids), Snapshotter.chainIDs(config.rootfs.diff_ids)) {
            if try snapshots.get(chainID)?.kind == "committed" { parent = chainID; continue }
            // Commands unpacking the same layer at once: one does it, the others wait and find it
            // committed. A pending one found while holding the lock was left by a crash: redo it.
            let lock = try snapshots.lockLayer(chainID)
            defer { close(lock) }
            let existing = try snapshots.get(chainID)
            if existing?.kind == "committed" { parent = chainID; continue }
            if let e = existing, e.kind.hasSuffix("-pending") { try snapshots.forget(e) }
            _ = try snapshots.create(key: chainID, parent: parent, kind: "committed") { fsDir in
                // Native: the parent's whole tree first, then this layer on top of it.
                if snapshots.kind == .native, let p = parent, let ps = try snapshots.get(p) { try snapshots.copyTree(snapshots.fs(ps.id), to: fsDir) }
                let stream = try LayerStream(path: try content.path(layer.digest), mediaType: layer.mediaType)
                try LayerApplier(root: fsDir, native: snapshots.kind == .native).apply(TarReader { n in try stream.read(n) })
                let got = try stream.finish()
                guard got == diffID else { throw ManagerError("unpack", layer.digest, "uncompressed digest \(got) does not match diff ID \(diffID)") }
            }
            parent = chainID
        }
        guard let top = parent else { throw ManagerError("unpack", manifest.config.digest, "the image has no layers") }
        return top
    }
}

/// Applies one layer tar to a directory, overlay style: `.wh.NAME` becomes a whiteout device,
/// `.wh..wh..opq` an opaque directory. Nothing is written outside `root`: `..` and absolute
/// names are cleaned, and a path that goes through a symlink is refused.
package struct LayerApplier {
    /// overlayfs reads trusted.overlay.* as root; in a user namespace (rootless, mounted with
    /// `userxattr`) user.overlay.*.
    static var overlayXattrPrefix: String { UserSession.active ? "user.overlay." : "trusted.overlay." }

    let root: String
    /// Native snapshots hold merged trees: a whiteout removes, an opaque marker empties.
    var native = false

    package static func clean(_ name: String) throws -> String {
        var parts: [Substring] = []
        for p in name.split(separator: "/") {
            if p == "." || p.isEmpty { continue }
            if p == ".." { throw ManagerError("unpack", name, "path escapes the layer (..)") }
            parts.append(p)
        }
        return parts.joined(separator: "/")
    }

    /// Parent directories must be real directories inside root (created as needed).
    func parent(of rel: String) throws -> String {
        let comps = rel.split(separator: "/").dropLast()
        var cur = root
        for c in comps {
            cur += "/" + c
            var st = stat()
            if lstat(cur, &st) == 0 {
                if st.st_mode & S_IFMT == S_IFLNK { throw ManagerError("unpack", rel, "a parent is a symlink; refusing to write through it") }
                if st.st_mode & S_IFMT != S_IFDIR { throw ManagerError("unpack", rel, "a parent is not a directory") }
            } else if mkdir(cur, 0o755) != 0 && errno != EEXIST {
                throw ManagerError("unpack", cur, String(cString: strerror(errno)))
            }
        }
        return cur
    }

    func apply(_ tar: TarReader) throws {
        while let h = try tar.next() {
            let rel = try LayerApplier.clean(h.name)
            if rel.isEmpty { continue }
            _ = try parent(of: rel)
            let path = root + "/" + rel
            let base = (rel as NSString).lastPathComponent
            if base == ".wh..wh..opq" {
                let dir = (path as NSString).deletingLastPathComponent
                if native {
                    for child in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] { removeExisting(dir + "/" + child) }
                } else if skiff_lsetxattr(dir, LayerApplier.overlayXattrPrefix + "opaque", "y", 1) != 0 {
                    throw sysError("opaque dir", dir)
                }
                continue
            }
            if base.hasPrefix(".wh.") {
                // ".wh." / ".wh.." / ".wh..." would white out the directory itself or its parent.
                let name = base.dropFirst(4)
                guard !name.isEmpty, name != ".", name != ".." else {
                    throw ManagerError("unpack", h.name, "whiteout of \(name.isEmpty ? "an empty name" : quote(String(name))) is not a file name; refused")
                }
                let target = (path as NSString).deletingLastPathComponent + "/" + name
                removeExisting(target)
                if !native && mknod(target, S_IFCHR | 0o000, 0) != 0 { throw sysError("whiteout", target) }
                continue
            }
            if case .directory = h.kind {} else { removeExisting(path) }
            switch h.kind {
            case .directory:
                var st = stat()
                if lstat(path, &st) == 0 && st.st_mode & S_IFMT != S_IFDIR { removeExisting(path) }
                if mkdir(path, mode_t(h.mode & 0o7777)) != 0 && errno != EEXIST { throw sysError("mkdir", path) }
            case .file:
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(h.mode & 0o7777))
                if fd < 0 { throw sysError("create", path) }
                defer { close(fd) }
                do { try tar.body { chunk in try FS.writeAll(fd: fd, chunk) } } catch let e as SkiffError where e.op == "write" {
                    throw ManagerError(
                        "unpack: write", path, errnoText(e.errno ?? EIO),
                        hint: e.errno == ENOSPC ? "free space where skiffctl's root is" : nil)
                }
            case .symlink:
                if symlink(h.linkname, path) != 0 { throw sysError("symlink", path) }
            case .hardlink:
                // The target is looked up below the layer's root without following any symlink on
                // the way (link(2) would follow one in a parent and link a host file in), and
                // linked through that fd. The link shares the target's inode and so its metadata:
                // nothing below is applied to it (a chmod would follow a linked symlink out).
                let target = try LayerApplier.clean(h.linkname)
                let rootFd = open(root, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
                if rootFd < 0 { throw sysError("open", root) }
                defer { close(rootFd) }
                let fd = skiff_openat2(
                    rootFd, target, UInt64(O_PATH_ | O_NOFOLLOW | O_CLOEXEC), 0,
                    SKIFF_RESOLVE_BENEATH | SKIFF_RESOLVE_NO_SYMLINKS)
                if fd < 0 {
                    if errno == ENOENT { throw ManagerError("unpack", rel, "hard link to \(h.linkname), which this layer lacks") }
                    if errno == ELOOP || errno == EXDEV { throw ManagerError("unpack", rel, "hard link to \(h.linkname) goes through a symlink; refused") }
                    throw sysError("open link target", h.linkname)
                }
                defer { close(fd) }
                if linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH_) != 0 {
                    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on the host (rootless: none); the
                    // fd's /proc link names the same inode.
                    guard errno == EPERM || errno == ENOENT, linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 else {
                        throw sysError("link", path)
                    }
                }
                continue
            case .char, .block, .fifo:
                let kind: mode_t = {
                    if case .char = h.kind { return S_IFCHR }; if case .block = h.kind { return S_IFBLK }; return S_IFIFO
                }()
                if mknod(path, kind | mode_t(h.mode & 0o7777), makedev(h.devmajor, h.devminor)) != 0 {
                    // Rootless: a user namespace makes no device nodes (podman skips them too);
                    // a container's /dev is its own anyway.
                    if errno == EPERM && UserSession.active && kind != S_IFIFO {
                        FileHandle.standardError.write(Data("skiffctl: warning: unpack: device node \(rel) skipped (rootless)\n".utf8))
                        continue
                    }
                    throw sysError("mknod", path)
                }
            case .other(let t):
                throw ManagerError("unpack", rel, "unsupported tar entry type \(t)")
            }
            if lchown(path, uid_t(h.uid), gid_t(h.gid)) != 0 { throw sysError("chown", path) }
            if case .symlink = h.kind {} else { chmod(path, mode_t(h.mode & 0o7777)) }
            // overlayfs control xattrs are the snapshotter's to write (opaque comes from .wh..wh..opq):
            // a layer's own redirect or metacopy would make the mount show files from elsewhere.
            for (k, v) in h.xattrs where !k.hasPrefix("trusted.overlay.") && !k.hasPrefix("user.overlay.") {
                _ = v.withUnsafeBytes { skiff_lsetxattr(path, k, $0.baseAddress, $0.count) }
            }
            var times = [timespec(tv_sec: h.mtime, tv_nsec: 0), timespec(tv_sec: h.mtime, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    func removeExisting(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR { try? FileManager.default.removeItem(atPath: path) } else { unlink(path) }
    }

    func sysError(_ op: String, _ path: String) -> ManagerError {
        ManagerError("unpack: \(op)", path, String(cString: strerror(errno)))
    }
}

let O_PATH_: Int32 = 0o10000000
let AT_EMPTY_PATH_: Int32 = 0x1000

func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((UInt64(major & 0xfffff000) << 32) | (UInt64(major & 0xfff) << 8) | (UInt64(minor & 0xffffff00) << 12) | UInt64(minor & 0xff))
}

import Foundation
import SkiffSys

/// Content-addressed blobs under `root/content/blobs/sha256`. Writes go to `ingest/` and are
/// renamed into place only after the digest (and size, when known) checked out, so a blob that
/// exists is always whole.
public struct ContentStore {
    let dir: String

    public init(root: String) { dir = root + "/content" }

    public static func validateDigest(_ d: String) throws -> String {
        let hex = d.hasPrefix("sha256:") ? String(d.dropFirst(7)) : ""
        guard hex.count == 64, hex.allSatisfy({ "0123456789abcdef".contains($0) }) else {
            throw ManagerError("digest", d, "not a sha256 digest", hint: "want sha256:<64 lowercase hex>")
        }
        return hex
    }

    public func path(_ digest: String) throws -> String { dir + "/blobs/sha256/" + (try ContentStore.validateDigest(digest)) }

    public func exists(_ digest: String) -> Bool { (try? path(digest)).map { FileManager.default.fileExists(atPath: $0) } ?? false }

    public func read(_ digest: String) throws -> [UInt8] {
        let p = try path(digest)
        guard let d = FileManager.default.contents(atPath: p) else {
            throw ManagerError("read content", digest, "not in the content store", hint: "the image is incomplete; pull or import it again")
        }
        return [UInt8](d)
    }

    /// A blob opened for reading, with its size: large blobs are copied from the fd, never
    /// read whole.
    public func openBlob(_ digest: String) throws -> (fd: Int32, size: Int) {
        let p = try path(digest)
        let fd = Glibc.open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT {
                throw ManagerError("read content", digest, "not in the content store", hint: "the image is incomplete; pull or import it again")
            }
            throw ManagerError("read content", p, String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = errno; close(fd); throw ManagerError("read content", p, String(cString: strerror(e))) }
        return (fd, Int(st.st_size))
    }

    /// A manifest, index or config: read whole, so refused past 8 MiB (an imported archive's
    /// blobs are whatever size it made them).
    public func readDocument(_ digest: String) throws -> [UInt8] {
        var st = stat()
        if stat(try path(digest), &st) == 0, st.st_size > ContentStore.maxDocumentSize {
            throw ManagerError(
                "read content", digest, "\(st.st_size) bytes, more than the \(ContentStore.maxDocumentSize >> 20) MiB a manifest, index or config may have")
        }
        return try read(digest)
    }

    /// Configs are kilobytes (a long history: hundreds of them); manifests are capped lower as
    /// they arrive (RegistryClient.maxManifestSize).
    static let maxDocumentSize = 8 << 20

    /// Writes a blob whose digest must be `expected`.
    public func write(_ bytes: [UInt8], expected: String, size: Int? = nil) throws {
        let target = try path(expected)
        if let size, size != bytes.count {
            throw ManagerError("write content", expected, "size \(bytes.count) does not match the descriptor's \(size)")
        }
        // Checked even when the blob is already there: a bad source is an error either way.
        let got = Digest.of(bytes)
        guard got == expected else { throw ManagerError("write content", expected, "digest mismatch: got \(got)") }
        if FileManager.default.fileExists(atPath: target) { return }
        let tmp = dir + "/ingest/" + UUID().uuidString
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else { throw ManagerError("write content", tmp, "cannot create") }
        if rename(tmp, target) != 0 {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw ManagerError("write content", target, e)
        }
    }

    /// A blob that arrives in pieces (an archive's member): written to ingest as it comes and
    /// hashed on the way, so a layer of any size needs no more memory than a piece; committed
    /// under `expected`, or under its own digest when nil. Nothing is left on an error.
    public func ingest(expected: String?, _ feed: (([UInt8]) throws -> Void) throws -> Void) throws -> (digest: String, size: Int) {
        if let expected { _ = try path(expected) }
        let tmp = dir + "/ingest/" + UUID().uuidString
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw ManagerError("write content", tmp, String(cString: strerror(errno))) }
        let h = Digest()
        var total = 0
        do {
            defer { close(fd) }
            try feed { piece in
                h.update(piece)
                do { try FS.writeAll(fd: fd, piece) } catch { throw ManagerError("write content", tmp, "\(error)") }
                total += piece.count
            }
        } catch {
            unlink(tmp)
            throw error
        }
        let digest = h.finalize()
        try commit(file: tmp, expected: expected ?? digest, size: total, digest: digest)
        return (digest, total)
    }

    /// Moves a finished download into the store after checking it, hashing it in 1 MiB chunks
    /// (layers are large). On a mismatch the file is removed.
    /// `digest`: what the caller hashed while the bytes streamed in (a pull), so the file is not
    /// read again; nil reads and hashes it here.
    public func commit(file: String, expected: String, size: Int, digest: String? = nil) throws {
        let target = try path(expected)
        var total = 0
        let got: String
        if let digest {
            var st = stat()
            if stat(file, &st) != 0 { throw ManagerError("write content", file, String(cString: strerror(errno))) }
            total = Int(st.st_size)
            got = digest
        } else {
            guard let fh = FileHandle(forReadingAtPath: file) else { throw ManagerError("write content", file, "cannot open") }
            let h = Digest()
            while true {
                let chunk = fh.readData(ofLength: 1 << 20)
                if chunk.isEmpty { break }
                total += chunk.count
                h.update(chunk)
            }
            try? fh.close()
            got = h.finalize()
        }
        guard total == size else { unlink(file); throw ManagerError("write content", expected, "size \(total) does not match the descriptor's \(size)") }
        guard got == expected else { unlink(file); throw ManagerError("write content", expected, "digest mismatch: got \(got)") }
        if rename(file, target) != 0 {
            let e = String(cString: strerror(errno))
            unlink(file)
            throw ManagerError("write content", target, e)
        }
    }

    public func remove(_ digest: String) throws { unlink(try path(digest)) }

    /// A download in `ingest/` is `<base>` (what arrived), `<base>.part` (the response being
    /// received) and `<base>.lock`, held with flock by the command downloading it: one writer per
    /// blob; another pull of the same blob waits, then finds it committed.
    /// The holder removes the lock file when it is done (committed, or nothing worth resuming),
    /// so a waiter that gets the lock checks it still holds the file at that path, else retries.
    static func lockIngest(_ base: String) throws -> Int32 {
        while true {
            let fd = open(base + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw ManagerError("lock download", base, String(cString: strerror(errno))) }
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR { let e = String(cString: strerror(errno)); close(fd); throw ManagerError("lock download", base, e) }
            }
            var held = stat(), now = stat()
            if fstat(fd, &held) == 0 && stat(base + ".lock", &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev {
                return fd
            }
            close(fd)
        }
    }

    /// Drops a download that is not worth resuming, with its lock; the caller holds the lock.
    static func dropIngest(_ base: String) {
        unlink(base); unlink(base + ".part"); unlink(base + ".lock")
    }

    /// Whether a command is downloading into `base` now.
    static func ingestBusy(_ base: String) -> Bool {
        let fd = open(base + ".lock", O_RDWR | O_CLOEXEC)
        if fd < 0 { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0
    }

    /// Removes a download no command holds, under its lock (a puller that was waiting on it
    /// sees the lock file gone and starts over). False if one holds it.
    @discardableResult
    static func removeIngest(_ base: String) -> Bool {
        let fd = open(base + ".lock", O_RDWR | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        if fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 { return false }
        unlink(base); unlink(base + ".part"); unlink(base + ".lock")
        return true
    }

    /// prune (`olderThan` 0): every download no command holds. Each pull first expires those
    /// untouched for a day, as containerd's ingests expire, so a store filled by an abandoned
    /// download heals without anyone running prune.
    public func pruneIngests(olderThan age: TimeInterval = 0) -> Int {
        let ingest = dir + "/ingest"
        var removed = 0
        func old(_ path: String, _ limit: TimeInterval) -> Bool {
            guard let m = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return false }
            return Date().timeIntervalSince(m) >= limit
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: ingest)) ?? [] {
            let path = ingest + "/" + name
            if name.hasSuffix(".lock") {
                let base = String(path.dropLast(5))
                // Age is the partial's, which a live download keeps touching.
                if (age == 0 || old(FileManager.default.fileExists(atPath: base) ? base : path, age)) && ContentStore.removeIngest(base) { removed += 1 }
            } else if !name.hasSuffix(".part") && !FileManager.default.fileExists(atPath: path + ".lock"), old(path, max(age, 86400)) {
                // Another writer's temporary file (putBytes/import): only when clearly abandoned.
                unlink(path); removed += 1
            }
        }
        return removed
    }

    public func all() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/blobs/sha256")) ?? []).map { "sha256:" + $0 }.sorted()
    }
}

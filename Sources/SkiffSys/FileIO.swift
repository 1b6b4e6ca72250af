import Glibc
import CSkiffSys

/// Retries a syscall on EINTR.
@inline(__always)
// For Int (read, write) and Int32 (everything else) rather than generic: a generic one looked
// up its BinaryInteger witnesses at run time, on the first call of every command.
public func retryEINTR(_ body: () -> Int) -> Int {
    while true {
        let r = body()
        if r < 0 && errno == EINTR { continue }
        return r
    }
}

public func retryEINTR(_ body: () -> Int32) -> Int32 {
    while true {
        let r = body()
        if r < 0 && errno == EINTR { continue }
        return r
    }
}

/// A read buffer that is not zero-filled: a 64 KiB `[UInt8](repeating: 0, ...)` writes (and so
/// makes resident) 16 pages that a short read never needed.
public struct ScratchBuffer {
    public let bytes: UnsafeMutableRawBufferPointer
    public init(_ size: Int) { bytes = .allocate(byteCount: size, alignment: 16) }
    public func free() { bytes.deallocate() }
}

public enum FS {
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        let fd = retryEINTR { Glibc.open(path, flags | O_CLOEXEC, mode) }
        if fd < 0 { throw SkiffError.sys("open", path) }
        return fd
    }

    public static func openat(_ dirfd: Int32, _ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        let fd = retryEINTR { Glibc.openat(dirfd, path, flags | O_CLOEXEC, mode) }
        if fd < 0 { throw SkiffError.sys("open", path) }
        return fd
    }

    public static func readAll(fd: Int32, limit: Int = 64 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        let buf = ScratchBuffer(65536)
        defer { buf.free() }
        while true {
            let n = retryEINTR { Glibc.read(fd, buf.bytes.baseAddress, buf.bytes.count) }
            if n < 0 { throw SkiffError.sys("read", "fd \(fd)") }
            if n == 0 { break }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf.bytes[0..<n]))
            if out.count > limit { throw SkiffError("read", "fd \(fd)", detail: "more than \(limit) bytes") }
        }
        return out
    }

    public static func readBytes(_ path: String, limit: Int = 64 << 20) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        do { return try readAll(fd: fd, limit: limit) } catch var e as SkiffError { e.object = path; throw e }
    }

    public static func readString(_ path: String) throws -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    public static func writeAll(fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                retryEINTR { Glibc.write(fd, p.baseAddress! + off, p.count - off) }
            }
            if n < 0 { throw SkiffError.sys("write", "fd \(fd)") }
            off += n
        }
    }

    public static func writeAll(fd: Int32, _ s: String) throws { try writeAll(fd: fd, Array(s.utf8)) }

    /// Best-effort message on stderr (nothing else to do if even that fails).
    public static func writeStderr(_ s: String) { _ = try? writeAll(fd: 2, s) }
    public static func writeStdout(_ s: String) { _ = try? writeAll(fd: 1, s) }

    /// Writes a small file in place (procfs, cgroupfs, sysctl: no truncation games, one write).
    public static func writeFile(_ path: String, _ s: String, flags: Int32 = O_WRONLY | O_TRUNC | O_CREAT, mode: mode_t = 0o644) throws {
        let fd = try open(path, flags, mode: mode)
        defer { close(fd) }
        try writeOnce(fd: fd, s, path: path)
    }

    /// `s` in one write(2), as kernel interface files take it (a short write is an error; the
    /// rest would be a second value); `path` names the file in errors.
    public static func writeOnce(fd: Int32, _ s: String, path: String) throws {
        let bytes = Array(s.utf8)
        let n = bytes.withUnsafeBytes { p in retryEINTR { Glibc.write(fd, p.baseAddress, p.count) } }
        if n < 0 { throw SkiffError.sys("write", path) }
        if n != bytes.count { throw SkiffError("write", path, detail: "short write (\(n) of \(bytes.count) bytes)") }
    }

    /// Atomic replace: a new temp file in the same directory (writeNewFile), renamed over `path`.
    public static func writeFileAtomic(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let tmp = path + ".tmp.\(getpid())"
        try writeNewFile(tmp, bytes, mode: mode)
        if rename(tmp, path) != 0 {
            let e = SkiffError.sys("rename", path)
            unlink(tmp)
            throw e
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates an empty file (a bind-mount target) unless something is already there; never
    /// follows a symlink at `path`.
    public static func createFileIfMissing(_ path: String, mode: mode_t) throws {
        if linkStat(path) != nil { return }
        let fd = Glibc.open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 { throw SkiffError.sys("create", path) }
        close(fd)
    }

    /// lstat(2); nil when it fails (errno is kept).
    public static func linkStat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return Glibc.lstat(path, &st) == 0 ? st : nil
    }

    /// stat(2); nil when it fails (errno is kept).
    public static func fileStat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 ? st : nil
    }

    public static func isDirectory(_ path: String) -> Bool {
        guard let st = fileStat(path) else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        var cur = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            cur += "/" + comp
            if mkdir(cur, mode) != 0 && errno != EEXIST { throw SkiffError.sys("mkdir", cur) }
        }
    }

    /// The entries of `path` but `.` and `..`, with their types as readdir reports them.
    /// One directory entry. A struct, not a tuple: an array of tuples has its metadata made at
    /// run time, on the first listing of every command.
    struct Entry {
        let name: String
        let type: UInt8
    }

    static func entries(_ path: String) throws -> [Entry] {
        guard let d = opendir(path) else { throw SkiffError.sys("opendir", path) }
        defer { closedir(d) }
        var out: [Entry] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(Entry(name: name, type: e.pointee.d_type)) }
        }
        return out
    }

    public static func listDirectory(_ path: String) throws -> [String] { try entries(path).map { $0.name }.sorted() }

    /// The names of the directories in `path`, from the entries' types where the filesystem
    /// reports them (cgroupfs, tmpfs, ext4 do) and lstat otherwise; symlinks are not followed.
    public static func subdirectories(_ path: String) -> [String] {
        ((try? entries(path)) ?? []).filter { e in
            e.type == UInt8(DT_DIR) || (e.type == UInt8(DT_UNKNOWN) && linkStat(path + "/" + e.name).map { $0.st_mode & S_IFMT == S_IFDIR } == true)
        }.map { $0.name }
    }

    /// Creates `path` (never there before, never replaced: no temporary file and rename) and
    /// writes `bytes`; a failed write removes it.
    public static func writeNewFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let fd = try open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
        do {
            try writeAll(fd: fd, bytes)
            close(fd)
        } catch var e as SkiffError {
            close(fd); unlink(path); e.object = path; throw e
        }
    }

    /// rm -rf without following symlinks; stays on one filesystem level per call.
    public static func removeAll(_ path: String) throws {
        guard let st = linkStat(path) else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) { try removeAll(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw SkiffError.sys("rmdir", path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SkiffError.sys("unlink", path)
        }
    }

    /// The first executable `name` in the absolute directories of `path` (a PATH-style list): a
    /// relative entry would name a file in whatever directory we run in (the shim's is the bundle).
    public static func which(_ name: String, path: String) -> String? {
        for dir in path.split(separator: ":") where dir.hasPrefix("/") && access("\(dir)/\(name)", X_OK) == 0 { return "\(dir)/\(name)" }
        return nil
    }

    public static func readlink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = Glibc.readlink(path, &buf, 4096)
        if n < 0 { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func cwd() -> String {
        // A working directory that was removed (or is too deep to name) is still where relative
        // paths resolve: through /proc/self/cwd, not "/" (where `--root rel` made "/rel").
        workingDirectory() ?? "/proc/self/cwd"
    }

    /// getcwd, or nil with errno set.
    public static func workingDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        guard getcwd(&buf, 4096) != nil else { return nil }
        return String(cString: buf)
    }

    /// Makes `p` absolute against `base` and removes `.`/`..`/duplicate slashes lexically.
    public static func absolute(_ p: String, base: String) -> String {
        clean(p.hasPrefix("/") ? p : base + "/" + p)
    }

    /// The filesystem magic (statfs f_type) of the directory at `path` (not a symlink to one),
    /// or nil when it cannot be opened (errno tells why).
    public static func filesystemType(ofDirectory path: String) -> Int? {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { Glibc.close(fd) }
        let t = skiff_fs_type(fd)
        return t < 0 ? nil : t
    }

    /// `p` against the working directory, which is only asked for when `p` is relative.
    public static func absolute(_ p: String) -> String {
        p.hasPrefix("/") ? clean(p) : absolute(p, base: cwd())
    }

    public static func clean(_ p: String) -> String {
        if isClean(p) { return p }
        var out: [Substring] = []
        // On bytes: a "/" followed by a combining mark is not a Character of its own.
        for c in splitASCII(p, UInt8(ascii: "/")) {
            if c == "." { continue }
            if c == ".." { if !out.isEmpty { out.removeLast() }; continue }
            out.append(c)
        }
        return "/" + out.joined(separator: "/")
    }

    /// Already what `clean` returns: absolute, no empty, `.` or `..` component, no trailing
    /// slash. Most paths are, and checking the bytes is far cheaper than splitting.
    static func isClean(_ p: String) -> Bool {
        var prev: UInt8 = 0
        var dots = 0  // length of the component so far while it is only dots; -1 once it is not
        var first = true
        for b in p.utf8 {
            if first {
                if b != UInt8(ascii: "/") { return false }
                first = false
                prev = b
                continue
            }
            if b == UInt8(ascii: "/") {
                if prev == UInt8(ascii: "/") || dots == 1 || dots == 2 { return false }
                dots = 0
            } else if b == UInt8(ascii: ".") {
                if dots >= 0 { dots += 1 }
            } else {
                dots = -1
            }
            prev = b
        }
        if first { return false }
        if p.utf8.count == 1 { return true }  // "/"
        return prev != UInt8(ascii: "/") && dots != 1 && dots != 2
    }

    public static func dirname(_ p: String) -> String {
        guard let i = p.lastIndex(of: "/") else { return "." }
        return i == p.startIndex ? "/" : String(p[..<i])
    }

    public static func basename(_ p: String) -> String {
        guard let i = p.lastIndex(of: "/") else { return p }
        return String(p[p.index(after: i)...])
    }
}

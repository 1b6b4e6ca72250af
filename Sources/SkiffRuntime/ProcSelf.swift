import Glibc
import CSkiffSys
import SkiffSys
import SkiffRootfs

/// Our own /proc files (oom_score_adj, attr/exec) where /proc may be a running container's to
/// change (exec): /proc must be the root of a proc mount, not a file system of the container's
/// with links into a procfs mounted elsewhere (CVE-2019-16884's way); the file is reached through
/// thread-self without leaving that mount or following a magic link, and opened without waiting
/// (a FIFO there would hang exec, and a shim waiting on it).
enum ProcSelf {
    static func write(_ rel: String, _ value: String) throws {
        let fd = try open(rel, O_WRONLY)
        defer { close(fd) }
        try FS.writeOnce(fd: fd, value, path: "/proc/self/" + rel)
    }

    /// A small file's text (a value for a message), or nil.
    static func read(_ rel: String) -> String? {
        guard let fd = try? open(rel, O_RDONLY) else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = retryEINTR { Glibc.read(fd, &buf, buf.count) }
        return n < 0 ? nil : String(decoding: buf[..<n], as: UTF8.self)
    }

    static func open(_ rel: String, _ flags: Int32) throws -> Int32 {
        let shown = "/proc/self/" + rel
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(root) }
        let proc = InRoot.open(root, "/proc", flags: InRoot.oPath | O_DIRECTORY, noSymlinks: true)
        if proc < 0 { throw SkiffError.sys("open", "/proc") }
        defer { close(proc) }
        var st = Glibc.stat()
        guard skiff_fs_type(proc) == 0x9fa0, fstat(proc, &st) == 0, st.st_ino == 1 else {  // PROC_SUPER_MAGIC, PROC_ROOT_INO
            throw SkiffError("write", shown, detail: "/proc is not a proc mount", hint: "the container's /proc must be procfs")
        }
        let fd = retryEINTR {
            skiff_openat2(proc, "thread-self/" + rel, UInt64(flags | O_NONBLOCK | O_CLOEXEC), 0, SKIFF_RESOLVE_NO_XDEV | SKIFF_RESOLVE_NO_MAGICLINKS)
        }
        if fd < 0 { throw SkiffError.sys("open", shown) }
        return fd
    }
}

import Glibc
import CSkiffSys
import SkiffSys
import SkiffRootfs

/// Entering `process.cwd`, for the init and for exec'd processes.
///
/// CVE-2024-21626: a cwd of /proc/self/fd/N, entered while the runtime still holds a host
/// directory at fd N (a cgroup, the state directory, a shim's bundle), lands the process on the
/// host. Three layers keep that out: the caller closes every fd but stdio, the preserved ones
/// and a few sockets first; the path is resolved by the kernel inside the process's root with
/// magic links refused and entered through the resulting fd; and getcwd afterwards must name a
/// directory reachable from that root (runc's check: the kernel prints "(unreachable)" otherwise).
enum WorkingDirectory {
    /// Enters `cwd`. Returns false, without changing directory, when it is not searchable by the
    /// current credentials and `deferDenied` is set: like runc, the caller tries again after
    /// switching to the process user (a directory only that user can search, e.g. on a
    /// root-squashed volume).
    static func enter(_ cwd: String, deferDenied: Bool) throws -> Bool {
        guard cwd.hasPrefix("/") else {
            throw SkiffError.msg("process.cwd \(quote(cwd)) is not an absolute path")
        }
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(root) }
        let fd = InRoot.open(root, cwd, flags: InRoot.oPath | O_DIRECTORY)
        if fd >= 0 {
            defer { close(fd) }
            if fchdir(fd) != 0 {
                if errno == EACCES && deferDenied { return false }
                throw SkiffError.sys("chdir", cwd)
            }
        } else if errno == ENOSYS || errno == EPERM {
            // No openat2 (a kernel before 5.6, or a seccomp profile that refuses it): plain chdir,
            // still checked below.
            if chdir(cwd) != 0 {
                if errno == EACCES && deferDenied { return false }
                throw SkiffError.sys("chdir", cwd, hint: "process.cwd must be a directory in the container")
            }
        } else {
            if errno == EACCES && deferDenied { return false }
            var e = SkiffError.sys("chdir", cwd)
            e.hint =
                e.errno == ELOOP
                ? "process.cwd must be a directory inside the container; /proc magic links such as /proc/self/fd/N are refused"
                : "process.cwd must be a directory in the container"
            throw e
        }
        try verify(cwd)
        return true
    }

    /// Creates `cwd` (and its parents) inside our root if it is missing, as runc does for the init.
    static func create(_ cwd: String) throws {
        guard cwd.hasPrefix("/") else { return }  // refused with a message by enter()
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(root) }
        do { close(try InRoot.mkdirAll(root, cwd)) } catch var e as SkiffError {
            if e.errno == ELOOP { e.hint = "process.cwd must be a directory inside the container; /proc magic links such as /proc/self/fd/N are refused" }
            throw e.wrapped("process.cwd")
        }
    }

    /// The directory we are in must be reachable from our root, by the path getcwd gives.
    static func verify(_ cwd: String) throws {
        let cap = Int(PATH_MAX) + 1
        let buf = UnsafeMutablePointer<CChar>.allocate(capacity: cap)
        defer { buf.deallocate() }
        // glibc turns the kernel's "(unreachable)/..." into ENOENT.
        guard getcwd(buf, cap) != nil else {
            throw SkiffError.sys(
                "chdir", cwd,
                hint: errno == ENOENT
                    ? "the working directory is outside the container's root: refused (possible container breakout)" : nil)
        }
        let path = String(cString: buf)
        var here = Glibc.stat(), there = Glibc.stat()
        guard path.hasPrefix("/"), stat(".", &here) == 0, stat(path, &there) == 0,
            here.st_dev == there.st_dev, here.st_ino == there.st_ino
        else {
            throw SkiffError(
                "chdir", cwd, detail: "the working directory is not \(quote(path)) as seen from the container's root",
                hint: "refused (possible container breakout)")
        }
    }
}

import Glibc
import CSkiffSys

/// Throwing Swift faces of the raw syscalls. Each names its operation and object in the error.
public enum Sys {
    public static func mount(_ source: String?, _ target: String, _ fstype: String?, _ flags: UInt, _ data: String?) throws {
        let r = Glibc.mount(source, target, fstype, flags, data)
        if r != 0 {
            var e = SkiffError.sys("mount", target)
            if let source, source != target, !(source.isEmpty) { e.detail = "source \(quote(source))" + (fstype.map { " type \($0)" } ?? "") }
            throw e
        }
    }

    public static func umount(_ target: String, flags: Int32 = 0) throws {
        if umount2(target, flags) != 0 { throw SkiffError.sys("umount", target) }
    }

    public static func pivotRoot(_ newRoot: String, _ putOld: String) throws {
        if skiff_pivot_root(newRoot, putOld) != 0 { throw SkiffError.sys("pivot_root", newRoot) }
    }

    public static func unshare(_ flags: UInt) throws {
        if skiff_unshare(Int32(truncatingIfNeeded: flags)) != 0 { throw SkiffError.sys("unshare", nsFlagNames(flags)) }
    }

    /// Joins namespaces in the given order (user first). Every path is opened before the first
    /// setns, since joining a mount namespace changes what later paths resolve to.
    /// `notHost` names namespaces that must not turn out to be the caller's own (with why): the
    /// check is on the opened fd, so the path cannot be swapped between check and setns.
    /// `stillValid`, when given, is asked once every namespace is open and before any is joined:
    /// paths under /proc/PID name whatever process has PID by then, so the caller checks that
    /// it is still the one it meant (its start time), after which the open fds keep to it.
    public static func joinNamespaces(_ joins: [(UInt, String)], notHost: [UInt: String] = [:], stillValid: (() -> Bool)? = nil) throws {
        var fds: [(Int32, UInt, String)] = []
        defer { for (fd, _, _) in fds { close(fd) } }
        for (flag, path) in joins {
            let fd = try FS.open(path, O_RDONLY)
            fds.append((fd, flag, path))
            guard let why = notHost[flag], let procName = nsProcName(flag) else { continue }
            var joined = stat(), own = stat()
            if fstat(fd, &joined) != 0 { throw SkiffError.sys("stat namespace", path) }
            if stat("/proc/self/ns/" + procName, &own) != 0 { throw SkiffError.sys("stat", "/proc/self/ns/" + procName) }
            if joined.st_dev == own.st_dev && joined.st_ino == own.st_ino {
                throw SkiffError.msg("\(why) not allowed in the host's \(nsFlagNames(flag)) namespace (\(path))")
            }
        }
        if let stillValid, !stillValid() {
            throw SkiffError.msg("join namespaces: the container's init has exited", hint: "its pid may now be another process's")
        }
        for (fd, flag, path) in fds where skiff_setns(fd, Int32(truncatingIfNeeded: flag)) != 0 {
            throw SkiffError.sys("join \(nsFlagNames(flag)) namespace", path)
        }
    }

    public static func prctl(_ op: Int32, _ a2: UInt = 0, _ a3: UInt = 0, name: String) throws {
        if skiff_prctl(op, a2, a3, 0, 0) != 0 { throw SkiffError.sys("prctl", name) }
    }

    /// Makes `fds` the process's 0, 1, 2 (in a child before exec). Sources below 3 are first
    /// moved out of the way so no dup2 overwrites a source still needed. False on failure.
    public static func installStdio(_ fds: [Int32]) -> Bool {
        var src = fds
        for i in src.indices where src[i] < 3 && src[i] != Int32(i) {
            let moved = skiff_fcntl_dupfd(src[i], 3)
            if moved < 0 { return false }
            src[i] = moved
        }
        for (i, fd) in src.enumerated() {
            if fd == Int32(i) { _ = skiff_fcntl_setfd(fd, 0) } else if dup2(fd, Int32(i)) < 0 { return false }
        }
        return true
    }

    /// Closes every descriptor from `first` up except those in `keep`, with close_range over the
    /// gaps (no /proc needed, so it works after pivot_root into a rootfs without one).
    public static func closeFds(from first: Int32, except keep: [Int32]) {
        var low = UInt32(max(first, 0))
        for fd in keep.filter({ $0 >= first }).sorted() {
            if UInt32(fd) > low { _ = skiff_close_range(low, UInt32(fd) - 1, 0) }
            low = max(low, UInt32(fd) + 1)
        }
        _ = skiff_close_range(low, UInt32.max, 0)
    }

    public static func socketpair(seqpacket: Bool = true) throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let type = (seqpacket ? Int32(SOCK_SEQPACKET.rawValue) : Int32(SOCK_STREAM.rawValue)) | Int32(SOCK_CLOEXEC.rawValue)
        if Glibc.socketpair(AF_UNIX, type, 0, &fds) != 0 { throw SkiffError.sys("socketpair") }
        return (fds[0], fds[1])
    }

    public static func pipe(cloexec: Bool = true) throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        if skiff_pipe2(&fds, cloexec ? O_CLOEXEC : 0) != 0 { throw SkiffError.sys("pipe2") }
        return (fds[0], fds[1])
    }

    public static func setCloexec(_ fd: Int32, _ on: Bool) {
        _ = skiff_fcntl_setfd(fd, on ? FD_CLOEXEC : 0)
    }

    /// A filesystem sockaddr_un for `path`, or an error naming the path when it is too long.
    static func unixAddress(_ path: String, op: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        if bytes.count >= cap {
            throw SkiffError(op, path, detail: "socket path longer than \(cap - 1) bytes", hint: "use a shorter path")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        return addr
    }

    static func withSockaddr<T>(_ addr: inout sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Connects a stream unix socket to a filesystem path.
    public static func connectUnix(_ path: String) throws -> Int32 {
        var addr = try unixAddress(path, op: "connect")
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SkiffError.sys("socket", path) }
        let r = withSockaddr(&addr) { sa, len in retryEINTR { Glibc.connect(fd, sa, len) } }
        if r != 0 { let e = SkiffError.sys("connect", path); close(fd); throw e }
        return fd
    }

    /// Binds and listens on a stream unix socket at a filesystem path.
    public static func listenUnix(_ path: String, backlog: Int32 = 128) throws -> Int32 {
        var addr = try unixAddress(path, op: "listen")
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SkiffError.sys("socket", path) }
        if withSockaddr(&addr, { Glibc.bind(fd, $0, $1) }) != 0 { let e = SkiffError.sys("bind", path); close(fd); throw e }
        if Glibc.listen(fd, backlog) != 0 { let e = SkiffError.sys("listen", path); close(fd); throw e }
        return fd
    }

    public static func sendFd(_ sock: Int32, _ fd: Int32, payload: String) throws {
        let data = Array((payload.isEmpty ? " " : payload).utf8)
        if data.withUnsafeBytes({ skiff_send_fd(sock, fd, $0.baseAddress, $0.count) }) != 0 {
            throw SkiffError.sys("sendmsg", "console socket")
        }
    }

    public static func recvFd(_ sock: Int32) throws -> (fd: Int32, payload: String) {
        var buf = [UInt8](repeating: 0, count: 4096)
        var len = 0
        let fd = buf.withUnsafeMutableBytes { skiff_recv_fd(sock, $0.baseAddress, $0.count, &len) }
        if fd < 0 { throw SkiffError.sys("recvmsg", "console socket") }
        return (fd, String(decoding: buf[0..<len], as: UTF8.self))
    }

    /// Sends one datagram on a SOCK_SEQPACKET socket.
    public static func sendMessage(_ fd: Int32, _ s: String) throws {
        let bytes = Array(s.utf8)
        let n = bytes.withUnsafeBytes { p in retryEINTR { Glibc.send(fd, p.baseAddress, p.count, Int32(MSG_NOSIGNAL)) } }
        if n < 0 { throw SkiffError.sys("send", "sync socket") }
    }

    /// Receives one datagram; nil on EOF (peer gone).
    public static func recvMessage(_ fd: Int32) throws -> String? {
        let buf = ScratchBuffer(65536)
        defer { buf.free() }
        let n = retryEINTR { Glibc.recv(fd, buf.bytes.baseAddress, buf.bytes.count, 0) }
        if n < 0 { throw SkiffError.sys("recv", "sync socket") }
        if n == 0 { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buf.bytes[0..<n]), as: UTF8.self)
    }

    /// waitpid that retries EINTR; returns the raw status.
    public static func wait(_ pid: pid_t, options: Int32 = 0) -> (pid: pid_t, status: Int32) {
        var st: Int32 = 0
        let r = retryEINTR { waitpid(pid, &st, options) }
        return (r, st)
    }
}

/// Exit code the way shells and runc report it: status, or 128+signal.
public func exitCode(fromWaitStatus st: Int32) -> Int32 {
    let sig = st & 0x7f
    if sig == 0 { return (st >> 8) & 0xff }
    return 128 + sig
}

public func nsFlagNames(_ flags: UInt) -> String {
    let table: [(UInt, String)] = [
        (UInt(SKIFF_CLONE_NEWUSER), "user"), (UInt(SKIFF_CLONE_NEWNS), "mount"), (UInt(SKIFF_CLONE_NEWPID), "pid"),
        (UInt(SKIFF_CLONE_NEWUTS), "uts"), (UInt(SKIFF_CLONE_NEWIPC), "ipc"), (UInt(SKIFF_CLONE_NEWNET), "network"),
        (UInt(SKIFF_CLONE_NEWCGROUP), "cgroup"), (UInt(SKIFF_CLONE_NEWTIME), "time")
    ]
    let names = table.filter { flags & $0.0 != 0 }.map(\.1)
    return names.isEmpty ? "none" : names.joined(separator: ",")
}

/// The name of a namespace under /proc/PID/ns/.
public func nsProcName(_ flag: UInt) -> String? {
    switch flag {
    case UInt(SKIFF_CLONE_NEWUSER): return "user"
    case UInt(SKIFF_CLONE_NEWNS): return "mnt"
    case UInt(SKIFF_CLONE_NEWPID): return "pid"
    case UInt(SKIFF_CLONE_NEWUTS): return "uts"
    case UInt(SKIFF_CLONE_NEWIPC): return "ipc"
    case UInt(SKIFF_CLONE_NEWNET): return "net"
    case UInt(SKIFF_CLONE_NEWCGROUP): return "cgroup"
    case UInt(SKIFF_CLONE_NEWTIME): return "time"
    default: return nil
    }
}

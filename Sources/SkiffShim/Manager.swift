import Glibc
import CSkiffSys
import SkiffSys
import SkiffJSON
import SkiffRuntime

import SkiffTTRPC
import SkiffWire
import SkiffEventLoop

/// The shim binary's three personalities, as containerd runs them: `start` (make the socket,
/// launch the daemon, print the address), `delete` (clean up after a dead or finished shim and
/// print a DeleteResponse), and the daemon itself (no action word).
public enum ShimManager {
    // MARK: start

    /// Returns the address to print. The socket is listening before the address is written or
    /// printed, so containerd can connect at once.
    public static func start(_ args: ShimArguments, argv0: String) throws -> String {
        guard !args.namespace.isEmpty else { throw SkiffError.msg("shim namespace cannot be empty") }
        guard !args.id.isEmpty else { throw SkiffError.msg("shim id cannot be empty", hint: "pass -id") }
        let bundle = FS.cwd()
        // Options arrive on stdin (an Any); nothing in them changes how we start.
        if isatty(0) == 0 { _ = try? FS.readAll(fd: 0, limit: 1 << 20) }
        let group = ShimAddress.group(bundle: bundle, id: args.id)
        let path =
            args.socket.isEmpty
            ? ShimAddress.socketPath(containerdAddress: args.address, namespace: args.namespace, group: group) : args.socket
        let address = "unix://" + path
        try FS.mkdirAll(FS.dirname(path), mode: 0o711)
        var listener: Int32 = -1
        for attempt in 0..<2 {
            do {
                listener = try Sys.listenUnix(path)
                break
            } catch let e as SkiffError where e.errno == EADDRINUSE && attempt == 0 {
                if let fd = try? Sys.connectUnix(path) {
                    // A live shim of the same group: it serves this container too.
                    close(fd)
                    try writeAddress(bundle: bundle, address)
                    return address
                }
                unlink(path)  // a stale socket of a dead shim
            }
        }
        guard listener >= 0 else { throw SkiffError.msg("listen \(quote(path)): address in use") }
        chmod(path, 0o600)
        do {
            try writeAddress(bundle: bundle, address)
            try spawnDaemon(args, argv0: argv0, listener: listener)
        } catch {
            close(listener)
            unlink(path)
            throw error
        }
        close(listener)
        return address
    }

    static func writeAddress(bundle: String, _ address: String) throws {
        try FS.writeFileAtomic(bundle + "/address", Array(address.utf8), mode: 0o644)
    }

    /// The daemon: a new session, stdio on /dev/null (containerd reads `start`'s output until
    /// EOF), the listener as fd 3. Not waited for: it is reparented when we exit. We do wait
    /// until it has exec'd (a close-on-exec pipe reaches EOF), so that a daemon that cannot start
    /// fails `start` with its reason instead of leaving containerd an address nobody serves.
    static func spawnDaemon(_ args: ShimArguments, argv0: String, listener: Int32) throws {
        let argv = CStringArray([argv0] + args.daemonArguments)
        // The real path, so the daemon shows under its own name (not "exe") in ps and /proc.
        let exe = FS.readlink("/proc/self/exe") ?? "/proc/self/exe"
        defer { argv.free() }
        let null = try FS.open("/dev/null", O_RDWR)
        defer { close(null) }
        let report = try Sys.pipe()
        let pid = fork()
        if pid < 0 { close(report.read); close(report.write); throw SkiffError.sys("fork", "shim daemon") }
        if pid == 0 {
            close(report.read)
            func fail(_ why: String) -> Never {
                _ = try? FS.writeAll(fd: report.write, why)
                _exit(126)
            }
            _ = setsid()
            let l = skiff_fcntl_dupfd(listener, 10)
            if l < 0 || !Sys.installStdio([null, null, null]) || dup2(l, 3) < 0 {
                fail("\(SkiffError.sys("set up stdio and the listener"))")
            }
            _ = skiff_close_range(4, UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
            resetSignalsForExec()
            // From a view of the binary that the containers cannot write (see ExeGuard); when
            // the binary is not writable by us anyway, from its path.
            do { _ = try ExeGuard.ensure(arguments: [argv0] + args.daemonArguments) } catch { fail("\(error)") }
            execv(exe, argv.pointers)
            fail("\(SkiffError.sys("exec", exe))")
        }
        close(report.write)
        defer { close(report.read) }
        let why = String(decoding: (try? FS.readAll(fd: report.read)) ?? [], as: UTF8.self)
        if !why.isEmpty {
            _ = Sys.wait(pid)
            throw SkiffError.msg("start the shim daemon: \(why)")
        }
    }

    // MARK: delete

    /// Cleans up a container whose shim is gone (or done): force-deletes it in the runtime,
    /// unmounts the rootfs, and reports the exit the shim recorded (else 137, like runc's shim).
    /// Idempotent: a container that is already gone is not an error.
    public static func delete(_ args: ShimArguments) -> DeleteResponse {
        let bundle = args.bundle.isEmpty ? FS.cwd() : FS.clean(args.bundle)
        var root = TaskService.defaultRoot(namespace: args.namespace)
        var binary = ""
        if let bytes = try? FS.readBytes(bundle + "/skiff-shim.json"), let v = try? JSONParser.parse(bytes) {
            if case .string(let r)? = v["root"] { root = r }
            if case .string(let b)? = v["binary"] { binary = b }
        }
        var pid: pid_t = 0
        let backend: RuntimeBackend
        if binary.isEmpty {
            let rt = Runtime(root: root)
            if let rec = try? rt.store.load(args.id) { pid = rec.pid }
            backend = InProcessBackend(runtime: rt)
        } else {
            if let text = try? FS.readString(bundle + "/init.pid"), let p = pid_t(text.trimmingTrailingWhitespace()) { pid = p }
            backend = ExternalBackend(binary: binary, root: root) { _ in bundle }
        }
        do { try backend.delete(id: args.id, force: true) } catch {
            Logger.shared.warn("delete \(quote(args.id)): \(error)")
        }
        RootfsMounts.unmountAll(bundle + "/rootfs")
        removeDeadSocket(bundle: bundle)
        var resp = DeleteResponse()
        if let rec = ExitRecord.load(ShimContainer.exitFile(bundle: bundle, execID: "")) {
            resp.pid = UInt32(rec.pid)
            resp.exitStatus = rec.status
            resp.exitedAt = rec.timestamp
        } else {
            resp.pid = UInt32(max(pid, 0))
            resp.exitStatus = 128 + UInt32(SIGKILL)
            resp.exitedAt = TaskEvents.now()
        }
        return resp
    }

    /// A shim killed with SIGKILL leaves its socket file behind; remove it once nothing answers
    /// (a live shim of the same group keeps serving).
    static func removeDeadSocket(bundle: String) {
        guard let address = try? FS.readString(bundle + "/address"), address.hasPrefix("unix://") else { return }
        let path = String(address.dropFirst(7))
        if let fd = try? Sys.connectUnix(path) { close(fd); return }
        unlink(path)
    }

    // MARK: daemon

    /// The long-running shim: one thread, one epoll loop. Serves the task API on fd 3 (or
    /// `-socket`), reaps every child as a subreaper, and exits on Shutdown once it has no
    /// containers left.
    public static func runDaemon(_ args: ShimArguments) -> Never {
        ExeGuard.clearMarker()
        _ = skiff_prctl(SKIFF_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        // A container sharing the host's pid namespace must not reach this binary through
        // /proc/PID/exe (or our fds through /proc/PID/fd).
        _ = skiff_prctl(SKIFF_PR_SET_DUMPABLE, 0, 0, 0, 0)
        signal(SIGPIPE, SIG_IGN)
        openShimLog(debug: args.debug)
        do {
            try serve(args)
        } catch {
            Logger.shared.error("shim: \(error)")
            exit(1)
        }
        exit(0)
    }

    /// containerd's `log` FIFO in the bundle becomes stderr; without one (skiffctl), `shim.log`.
    static func openShimLog(debug: Bool) {
        var fd = Glibc.open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { fd = Glibc.open("shim.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
        if fd >= 0 {
            dup2(fd, 2)
            close(fd)
        }
        Logger.shared.fd = 2
        Logger.shared.debugEnabled = debug
    }

    static func serve(_ args: ShimArguments) throws {
        let loop = try EventLoop()
        let listener: Int32
        if args.socket.isEmpty {
            listener = 3
            Sys.setCloexec(listener, true)
        } else {
            unlink(args.socket)
            listener = try Sys.listenUnix(args.socket)
        }
        let socketPath = localAddress(listener)
        let server = TTRPCServer(loop: loop)
        let ttrpcAddress = getenv("TTRPC_ADDRESS").map { String(cString: $0) } ?? ""
        let eventsFile = getenv("SKIFF_EVENTS_FILE").map { String(cString: $0) } ?? ""
        let sink: EventSink
        if !ttrpcAddress.isEmpty {
            sink = ContainerdEventSink(address: ttrpcAddress, namespace: args.namespace, loop: loop)
        } else if !eventsFile.isEmpty {
            sink = FileEventSink(path: eventsFile, namespace: args.namespace)
        } else {
            sink = LogEventSink()
        }
        let service = TaskService(loop: loop, namespace: args.namespace, publisher: sink)
        service.register(on: server)
        try server.serve(listener: listener)

        var shuttingDown = false
        func finish() {
            shuttingDown = true
            loop.stopped = true
        }
        service.onShutdown = finish

        var sigs: [Int32] = [SIGCHLD, SIGTERM, SIGINT]
        let sfd = skiff_signalfd_for(&sigs, Int32(sigs.count))
        if sfd < 0 { throw SkiffError.sys("signalfd") }
        try loop.add(sfd) { _ in
            while true {
                let sig = skiff_signalfd_read(sfd)
                if sig < 0 { break }
                if sig == SIGCHLD {
                    reapAll(service)
                } else if !shuttingDown {
                    Logger.shared.warn("shim: signal \(sig): exiting; containers keep running")
                    finish()
                }
            }
        }
        // Children that exited before the signalfd existed.
        reapAll(service)
        Logger.shared.debug("shim \(getpid()) serving \(socketPath ?? "fd 3") for \(args.namespace)/\(args.id)")
        // Idle for a second with nothing scheduled: hand back the pages the last burst of work
        // faulted in, and sleep until the next request or exit.
        let trim = IdleTrim()
        while !loop.stopped {
            if loop.runOnce(timeoutMs: 1000) == 0 && !loop.stopped {
                // Idle: a shim whose containers were all deleted behind its back exits.
                if service.dropVanished() { finish(); break }
                // A stopped container is checked each second until it is deleted; otherwise sleep.
                if !loop.hasTimers && !service.hasStoppedContainer { loop.sleepReleasingMemory(trim) }
            }
        }
        if let p = socketPath { unlink(p) }
    }

    static func reapAll(_ service: TaskService) {
        while true {
            var st: Int32 = 0
            let pid = waitpid(-1, &st, WNOHANG)
            if pid <= 0 { return }
            service.childExited(pid: pid, waitStatus: st)
        }
    }

    /// The filesystem path a listening unix socket is bound to.
    static func localAddress(_ fd: Int32) -> String? {
        var addr = sockaddr_un()
        var len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let r = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard r == 0 else { return nil }
        let path = withUnsafeBytes(of: addr.sun_path) { raw -> String in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }
}

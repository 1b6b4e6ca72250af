import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffJSON
import SkiffCgroups
import SkiffRuntime

/// What the task service needs from an OCI runtime. The default runs skiff's runtime library
/// in-process; a configured BinaryName (runc, crun, ...) is driven through runc's CLI instead.
protocol RuntimeBackend {
    /// stdio: the process's fds 0-2; consoleSocket: where the pty master must be sent.
    func create(id: String, bundle: String, stdio: [Int32], consoleSocket: Int32?, noPivot: Bool) throws -> pid_t
    func start(id: String) throws
    func kill(id: String, signal: Int32, all: Bool) throws
    func delete(id: String, force: Bool) throws
    func exec(id: String, process: Process, processJSON: [UInt8], stdio: [Int32], consoleSocket: Int32?) throws -> pid_t
    func pids(id: String) throws -> [pid_t]
    func pause(id: String) throws
    func resume(id: String) throws
    func update(id: String, resourcesJSON: [UInt8]) throws
    /// Whether the runtime still has the container (someone may delete it behind our back).
    func exists(id: String) -> Bool
}

/// The container's cgroup v2 directory, from its init's /proc/PID/cgroup (works for any runtime).
func cgroupDirectory(ofPid pid: pid_t) -> String? {
    guard let mp = Cgroup2.hostMountpoint(), let text = try? FS.readString("/proc/\(pid)/cgroup") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("0::") {
        return FS.clean(mp + "/" + line.dropFirst(3))
    }
    return nil
}

/// skiff's runtime library, in the shim's own process: no exec per operation.
struct InProcessBackend: RuntimeBackend {
    let runtime: Runtime

    func create(id: String, bundle: String, stdio: [Int32], consoleSocket: Int32?, noPivot: Bool) throws -> pid_t {
        var opts = CreateOptions(bundle: bundle)
        opts.noPivot = noPivot
        opts.stdio = stdio
        opts.consoleSocketFd = consoleSocket
        return try runtime.create(id: id, options: opts)
    }

    func start(id: String) throws { try runtime.start(id: id) }
    func kill(id: String, signal: Int32, all: Bool) throws { try runtime.kill(id: id, signal: signal, all: all) }

    func delete(id: String, force: Bool) throws {
        do { try runtime.delete(id: id, force: force) } catch let e as SkiffError where e.kind == .notExist {}
    }

    func exec(id: String, process: Process, processJSON: [UInt8], stdio: [Int32], consoleSocket: Int32?) throws -> pid_t {
        var opts = ExecOptions(process: process)
        opts.stdio = stdio
        opts.consoleSocketFd = consoleSocket
        return try runtime.execDetached(id: id, options: opts)
    }

    func pids(id: String) throws -> [pid_t] { try runtime.pids(id: id) }
    func pause(id: String) throws { try runtime.pause(id: id) }
    func resume(id: String) throws { try runtime.resume(id: id) }

    func update(id: String, resourcesJSON: [UInt8]) throws {
        try runtime.update(id: id, resources: try JSON.decode(Resources.self, from: resourcesJSON, what: "update resources"))
    }

    func exists(id: String) -> Bool { runtime.store.exists(id) }
}

/// A runc-compatible binary, called as containerd's go-runc does: `--root R --log
/// <bundle>/log.json --log-format json`, the process's stdio as the binary's own, a console
/// socket path for terminals. Errors come from the log's last error record.
struct ExternalBackend: RuntimeBackend {
    /// The kind of a runc error from its message (libcontainer's ErrNotExist, ErrExist,
    /// "container not running", "... is paused").
    static func kind(ofRuncMessage m: String) -> SkiffError.Kind? {
        if m.contains("does not exist") || m.contains("not found") { return .notExist }
        if m.contains("already exists") { return .exists }
        if m.contains("not running") { return .notRunning }
        if m.contains("paused") { return .paused }
        return nil
    }

    let binary: String
    let root: String
    let bundleOf: (String) -> String
    var systemdCgroup = false

    /// An absolute path, or a name looked up on PATH (as go-runc's exec does).
    static func resolve(_ name: String) -> String? {
        if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
        return FS.which(name, path: getenv("PATH").map { String(cString: $0) } ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    }

    func global(_ id: String) -> [String] {
        [binary, "--root", root, "--log", bundleOf(id) + "/log.json", "--log-format", "json"] + (systemdCgroup ? ["--systemd-cgroup"] : [])
    }

    /// Runs the binary; fds 0-2 of the child are `stdio` (or /dev/null), `stdin` bytes go to a
    /// pipe on fd 0 instead when given. A non-zero exit is an error naming the command.
    func run(_ id: String, _ args: [String], stdio: [Int32]? = nil, stdin: [UInt8]? = nil, output: Bool = false) throws -> [UInt8] {
        let argv = global(id) + args
        let c = CStringArray(argv)
        defer { c.free() }
        let null = try FS.open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let inPipe = stdin != nil ? try Sys.pipe() : nil
        let outPipe = output ? try Sys.pipe() : nil
        var fds = stdio ?? [null, null, null]
        if let p = inPipe { fds[0] = p.read }
        if let p = outPipe { fds[1] = p.write }
        let pid = fork()
        if pid < 0 { throw SkiffError.sys("fork", binary) }
        if pid == 0 {
            if !Sys.installStdio(fds) { _exit(126) }
            _ = skiff_close_range(3, UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
            resetSignalsForExec()
            execv(binary, c.pointers)
            _exit(127)
        }
        if let p = inPipe {
            close(p.read)
            _ = try? FS.writeAll(fd: p.write, stdin ?? [])
            close(p.write)
        }
        var out: [UInt8] = []
        if let p = outPipe {
            close(p.write)
            out = (try? FS.readAll(fd: p.read)) ?? []
            close(p.read)
        }
        let st = Sys.wait(pid).status
        if st != 0 {
            let what = "\(FS.basename(binary)) \(args.first ?? "")"
            let message = lastError(id)
            var e = SkiffError.msg("\(what) \(quote(id)): \(message ?? "exit status \(exitCode(fromWaitStatus: st))")")
            // An external runc's words are all there is to go on: its output is parsed here, once.
            e.kind = message.flatMap(ExternalBackend.kind(ofRuncMessage:))
            throw e
        }
        return out
    }

    /// The last error message the runtime logged (runc: one JSON record per line).
    func lastError(_ id: String) -> String? {
        guard let text = try? FS.readString(bundleOf(id) + "/log.json") else { return nil }
        for line in text.split(separator: "\n").reversed() {
            guard let v = try? JSONParser.parse(Array(line.utf8)), case .string(let level)? = v["level"], level == "error" || level == "fatal",
                case .string(let msg)? = v["msg"]
            else { continue }
            return msg
        }
        return nil
    }

    func create(id: String, bundle: String, stdio: [Int32], consoleSocket: Int32?, noPivot: Bool) throws -> pid_t {
        try runForPid(
            id, ["create", "--bundle", bundle] + (noPivot ? ["--no-pivot"] : []), pidFile: bundle + "/init.pid",
            stdio: stdio, consoleSocket: consoleSocket, dir: bundle)
    }

    /// create/exec: the runtime writes the new process's pid to `pidFile`; with a console socket
    /// the pty master it sends is relayed to ours.
    func runForPid(_ id: String, _ args: [String], pidFile: String, stdio: [Int32], consoleSocket: Int32?, dir: String) throws -> pid_t {
        unlink(pidFile)
        var args = args + ["--pid-file", pidFile]
        let console = try consoleSocket.map { try ConsoleRelay(sending: $0, dir: dir) }
        defer { console?.close() }
        if let console { args += ["--console-socket", console.path] }
        _ = try run(id, args + [id], stdio: stdio)
        try console?.relay()
        guard let text = try? FS.readString(pidFile), let pid = pid_t(text.trimmingTrailingWhitespace()) else {
            throw SkiffError.msg("\(args[0]) \(quote(id)): \(FS.basename(binary)) wrote no pid file", hint: "is \(binary) runc-compatible?")
        }
        return pid
    }

    func start(id: String) throws { _ = try run(id, ["start", id]) }

    func kill(id: String, signal: Int32, all: Bool) throws {
        _ = try run(id, ["kill"] + (all ? ["--all"] : []) + [id, String(signal)])
    }

    func delete(id: String, force: Bool) throws {
        do { _ = try run(id, ["delete"] + (force ? ["--force"] : []) + [id]) } catch let e as SkiffError where e.kind == .notExist {}
    }

    func exec(id: String, process: Process, processJSON: [UInt8], stdio: [Int32], consoleSocket: Int32?) throws -> pid_t {
        let dir = bundleOf(id)
        let token = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let processFile = dir + "/.exec-\(token).json", pidFile = dir + "/.exec-\(token).pid"
        try FS.writeFileAtomic(processFile, processJSON, mode: 0o600)
        defer { unlink(processFile); unlink(pidFile) }
        return try runForPid(
            id, ["exec", "--process", processFile, "--detach"], pidFile: pidFile, stdio: stdio,
            consoleSocket: consoleSocket, dir: dir)
    }

    func pids(id: String) throws -> [pid_t] {
        let out = try run(id, ["ps", "--format", "json", id], output: true)
        guard case .array(let items) = try JSONParser.parse(out) else { return [] }
        return items.compactMap { if case .number(let n) = $0 { return pid_t(n) } else { return nil } }
    }

    func pause(id: String) throws { _ = try run(id, ["pause", id]) }
    func resume(id: String) throws { _ = try run(id, ["resume", id]) }
    func update(id: String, resourcesJSON: [UInt8]) throws { _ = try run(id, ["update", "--resources", "-", id], stdin: resourcesJSON) }
    /// runc's state layout: `<root>/<id>`.
    func exists(id: String) -> Bool { FS.isDirectory(root + "/" + id) }
}

/// An external runtime wants a console socket path; the task service holds a connected socket
/// (its ProcessIO). This listens on a private path, takes the master the runtime sends, and
/// passes it on.
final class ConsoleRelay {
    let path: String
    let listener: Int32
    let target: Int32

    init(sending target: Int32, dir: String) throws {
        self.target = target
        path = dir + "/.console-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).sock"
        listener = try Sys.listenUnix(path, backlog: 1)
    }

    func relay() throws {
        var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 10_000) > 0 else { throw SkiffError.msg("console socket \(quote(path)): the runtime never connected") }
        let conn = accept(listener, nil, nil)
        if conn < 0 { throw SkiffError.sys("accept", path) }
        defer { Glibc.close(conn) }
        let (master, _) = try Sys.recvFd(conn)
        defer { Glibc.close(master) }
        try Sys.sendFd(target, master, payload: "console")
    }

    func close() {
        Glibc.close(listener)
        unlink(path)
    }
}

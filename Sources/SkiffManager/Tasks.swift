import Foundation
import SkiffSys
import SkiffSpec
import SkiffState
import SkiffCgroups
import SkiffTTRPC
import SkiffWire

/// Tasks: the task of a container (Containers.swift) through containerd-shim-skiff-v2 over
/// ttrpc, exactly as containerd would drive it; `run` is create + start (+ delete).
public struct Tasks {
    let store: Store
    public let shimBinary: String
    static let task = "containerd.task.v2.Task"

    public init(_ store: Store, shimBinary: String) {
        self.store = store
        self.shimBinary = shimBinary
    }

    func bundle(_ id: String) -> String { store.state + "/" + store.namespace + "/" + id }
    var runtimeRoot: String { store.state + "/runtime" }
    public var eventsFile: String { store.state + "/events.log" }

    /// `run`: create the container and start its task; attached, wait for the exit and delete
    /// the task, and with --rm the container too, on every path. Returns the exit status (0 detached).
    public func run(_ o: RunOptions, attachOutput: Bool, detach: Bool = false) throws -> Int32 {
        try createContainer(o)
        do {
            let status = try startTask(o.id, detach: detach, logURI: o.logURI, nullIO: o.nullIO || !attachOutput, tty: o.tty)
            if o.remove && !detach { try removeContainer(o.id) }
            return status
        } catch {
            if o.remove || detach { rollbackTask(o.id); try? removeContainer(o.id) }
            throw error
        }
    }

    func unmountAll(_ path: String) { while umount2(path, Int32(MNT_DETACH)) == 0 {} }

    /// Where the shim of `id` listens: containerd's socket naming for our address and namespace.
    func shimAddress(_ id: String) -> String {
        "unix://"
            + ShimAddress.socketPath(
                containerdAddress: store.state + "/skiffctl", namespace: store.namespace,
                group: ShimAddress.group(bundle: bundle(id), id: id))
    }

    /// The shim serving a container, from the address its `start` wrote into the bundle, else
    /// where a shim for this id would listen.
    func client(_ id: String) throws -> TTRPCClient {
        let recorded = try? String(contentsOfFile: bundle(id) + "/address", encoding: .utf8)
        if let c = try? TTRPCClient.connect(recorded ?? shimAddress(id)) { return c }
        if recorded == nil { throw ManagerError("task", id, "no task", hint: "skiffctl tasks start \(id)") }
        throw ManagerError("task", id, "its shim does not answer", hint: "skiffctl doctor finds and cleans up after dead shims")
    }

    /// Whether `id` has a task: its shim answers for it, or the runtime holds a container of that
    /// id that is not stopped (a shim killed under it leaves that behind).
    public func taskAlive(_ id: String) -> Bool {
        if (try? state(id)) != nil { return true }
        let runtime = StateStore(root: runtimeRoot + "/" + store.namespace)
        guard let r = try? runtime.load(id) else { return false }
        return runtime.status(of: r) != .stopped
    }

    /// Undoes a task that failed to start or whose shim died: through the shim when it answers,
    /// else the shim's `delete` action force-deletes the container in the runtime.
    func rollbackTask(_ id: String) {
        // Every path below is made from the id: never from one that could leave the state dir.
        guard Identifier.isValid(id) else { return }
        let socket = String(shimAddress(id).dropFirst("unix://".count))
        do { try deleteTask(id, force: true) } catch {
            try? shimDeleteAction(id)
            unlink(bundle(id) + "/address")
        }
        // A shim killed in the middle of Create leaves what only it would have removed: its
        // socket, and the cgroup skiffctl named for this container (/<namespace>/<id>) when the
        // runtime had made it and not yet recorded it. Both are skiffctl's names; removed only
        // when nothing listens and nothing runs there.
        if (try? Sys.connectUnix(socket)).map({
            close($0); return false
        }) ?? true {
            unlink(socket)
        }
        if let mp = Cgroup2.hostMountpoint() { rmdir(mp + "/" + store.namespace + "/" + id) }
    }

    func call<R: ProtoMessage>(_ c: TTRPCClient, _ method: String, _ req: some ProtoMessage, timeoutMs: Int32 = 60_000) throws -> R {
        try R(protoBytes: try c.call(service: Tasks.task, method: method, payload: req.protoBytes(), timeoutMs: timeoutMs))
    }

    /// `tasks start`: the shim, Create with the snapshot's overlay mount, Start. Attached, the
    /// output is copied here until the task exits, then the task is deleted; returns its status.
    public func startTask(_ id: String, detach: Bool, logURI: String?, nullIO: Bool, tty: Bool = false) throws -> Int32 {
        guard let record = try ContainerStore(store).get(id) else { throw ManagerError("start task", id, "no such container") }
        let key = record.snapshotKey
        let snapshotter = Snapshotter(store, kind: Snapshotter.Kind(rawValue: record.snapshotter))
        // A task that exists is left alone: a failed second start must not take it down.
        if taskAlive(id) { throw ManagerError("start task", id, "already exists", hint: "skiffctl tasks ls shows it") }
        let mount = try snapshotter.mount(key)
        let dir = bundle(id)
        let address = try startShim(id: id, bundle: dir)
        let c = try TTRPCClient.connect(address)
        var create = CreateTaskRequest()
        create.id = id
        create.bundle = dir
        var m = SkiffWire.Mount()
        m.type = mount.type; m.source = mount.source; m.options = mount.options
        create.rootfs = [m]
        var opts = RuncOptions()
        opts.root = runtimeRoot
        create.options = ProtoAny(typeURL: RuncOptions.protoName, value: opts.protoBytes())
        var fifos: [(Int32, Int32)] = []
        var stdinFifo: Int32 = -1
        defer { for (fd, _) in fifos { close(fd) }; if stdinFifo >= 0 { close(stdinFifo) } }
        if tty && !detach {
            // The pty's output comes on stdout; our stdin goes to the container's.
            create.terminal = true
            create.stdin = dir + "/stdin"
            stdinFifo = try Tasks.fifo(create.stdin, O_RDWR)
            create.stdout = dir + "/stdout"
            fifos.append((try Tasks.fifo(create.stdout, O_RDONLY), 1))
        } else if let log = logURI {
            create.stdout = log; create.stderr = log
        } else if !nullIO && !detach {
            create.stdout = dir + "/stdout"
            create.stderr = dir + "/stderr"
            fifos = [(try Tasks.fifo(create.stdout, O_RDONLY), 1), (try Tasks.fifo(create.stderr, O_RDONLY), 2)]
        }
        do {
            let _: CreateTaskResponse = try call(c, "Create", create)
        } catch {
            let _: ProtoEmpty? = try? call(c, "Shutdown", ShutdownRequest())
            try? shimDeleteAction(id)  // a shim that died during Create may have left a container
            unlink(dir + "/address")
            throw Tasks.explain(error, id)
        }
        var waitStream: UInt32 = 0
        if !detach {
            var w = WaitRequest(); w.id = id
            waitStream = try c.send(service: Tasks.task, method: "Wait", payload: w.protoBytes(), timeoutMs: Int32.max)
        }
        var start = StartRequest(); start.id = id
        do {
            let _: StartResponse = try call(c, "Start", start)
        } catch {
            rollbackTask(id)
            throw Tasks.explain(error, id)
        }
        if detach { return 0 }
        if tty {
            Terminal.relay(client: c, id: id, stdinFifo: stdinFifo, output: fifos.first?.0 ?? -1) { r in
                let _: ProtoEmpty? = try? self.call(c, "ResizePty", r)
            }
        } else {
            copyOutput(fifos)
        }
        let exit = try WaitResponse(protoBytes: try c.receive(stream: waitStream, timeoutMs: Int32.max, what: "wait"))
        try deleteTask(id, force: false)
        return Int32(bitPattern: exit.exitStatus)
    }

    /// A fresh FIFO for a task's stdio, opened by us without blocking (the shim opens the other side).
    /// A FIFO opened without blocking. `exclusive`: one already there belongs to someone else
    /// (another exec with the same id) and is an error, not something to replace.
    static func fifo(_ path: String, _ mode: Int32, exclusive: Bool = false) throws -> Int32 {
        if !exclusive { unlink(path) }
        if mkfifo(path, 0o600) != 0 {
            if exclusive && errno == EEXIST {
                throw ManagerError("make fifo", path, "already in use", hint: "an exec with the same --exec-id is running; use another id")
            }
            throw ManagerError("make fifo", path, String(cString: strerror(errno)))
        }
        let fd = open(path, mode | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw ManagerError("open fifo", path, String(cString: strerror(errno))) }
        return fd
    }

    /// Copies FIFO output to our fds until the shim closes them (the task and its output ended).
    func copyOutput(_ fifos: [(Int32, Int32)]) {
        var open = fifos.filter { $0.0 >= 0 }
        var buf = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var pfds = open.map { pollfd(fd: $0.0, events: Int16(POLLIN), revents: 0) }
            if poll(&pfds, nfds_t(pfds.count), 200) < 0 && errno != EINTR { break }
            var still: [(Int32, Int32)] = []
            for (i, pair) in open.enumerated() {
                if pfds[i].revents == 0 { still.append(pair); continue }
                let n = read(pair.0, &buf, buf.count)
                if n > 0 { _ = write(pair.1, buf, n); still.append(pair) } else if n < 0 && errno == EAGAIN { still.append(pair) }
            }
            open = still
        }
    }

    /// `tasks rm`: Delete (after SIGKILL with force) and Shutdown; the shim exits.
    public func deleteTask(_ id: String, force: Bool) throws {
        let c = try client(id)
        if force {
            var k = KillRequest(); k.id = id; k.signal = 9; k.all = true
            let _: ProtoEmpty? = try? call(c, "Kill", k)
            var w = WaitRequest(); w.id = id
            let _: WaitResponse? = try? call(c, "Wait", w, timeoutMs: 10_000)
        }
        var d = DeleteRequest(); d.id = id
        let _: DeleteResponse = try call(c, "Delete", d)
        let _: ProtoEmpty? = try? call(c, "Shutdown", ShutdownRequest())
        unlink(bundle(id) + "/address")
        for f in ["stdin", "stdout", "stderr"] { unlink(bundle(id) + "/" + f) }
    }

    public func state(_ id: String) throws -> StateResponse {
        var r = StateRequest(); r.id = id
        return try call(try client(id), "State", r)
    }

    /// `tasks ls`: every container whose shim answers.
    public func tasks() throws -> [StateResponse] {
        try containers().compactMap { try? state($0.id) }
    }

    public func kill(_ id: String, signal: UInt32, all: Bool, execID: String = "") throws {
        var k = KillRequest(); k.id = id; k.signal = signal; k.all = all; k.execID = execID
        let _: ProtoEmpty = try call(try client(id), "Kill", k)
    }

    public func pause(_ id: String) throws { var r = PauseRequest(); r.id = id; let _: ProtoEmpty = try call(try client(id), "Pause", r) }
    public func resume(_ id: String) throws { var r = ResumeRequest(); r.id = id; let _: ProtoEmpty = try call(try client(id), "Resume", r) }

    public func pids(_ id: String) throws -> [(pid: UInt32, execID: String)] {
        var r = PidsRequest(); r.id = id
        let resp: PidsResponse = try call(try client(id), "Pids", r)
        return resp.processes.map { p in
            let exec = p.info.flatMap { try? ProcessDetails(protoBytes: $0.value).execID } ?? ""
            return (p.pid, exec)
        }
    }

    public func metrics(_ id: String) throws -> Metrics {
        var r = StatsRequest(); r.id = id
        let resp: StatsResponse = try call(try client(id), "Stats", r)
        return try Metrics(protoBytes: resp.stats?.value ?? [])
    }

    /// `tasks exec`: a process in the running task; its output here, its exit status returned.
    public func exec(_ id: String, execID: String, args: [String], cwd: String?, env: [String], tty: Bool = false) throws -> Int32 {
        let c = try client(id)
        guard let specBytes = try ContainerStore(store).get(id)?.spec,
            var process = try JSON.decode(Spec.self, from: specBytes, what: "container spec").process
        else {
            throw ManagerError("exec", id, "no such container")
        }
        process.args = args
        process.terminal = tty
        if let cwd { process.cwd = cwd }
        process.env = (process.env ?? []) + env
        try Identifier.validate(execID, what: "exec id")
        let dir = bundle(id)
        var fifos: [(Int32, Int32)] = []
        var stdinFifo: Int32 = -1
        var req = ExecProcessRequest()
        req.id = id; req.execID = execID; req.terminal = tty
        req.stdout = dir + "/\(execID)-stdout"
        // Made exclusively: the stdout FIFO reserves the id among concurrent `tasks exec` runs.
        fifos = [(try Tasks.fifo(req.stdout, O_RDONLY, exclusive: true), 1)]
        defer {
            for (fd, _) in fifos { close(fd) }
            if stdinFifo >= 0 { close(stdinFifo) }
            for n in ["stdin", "stdout", "stderr"] { unlink(dir + "/\(execID)-" + n) }
        }
        if tty {
            req.stdin = dir + "/\(execID)-stdin"
            stdinFifo = try Tasks.fifo(req.stdin, O_RDWR)
        } else {
            req.stderr = dir + "/\(execID)-stderr"
            fifos.append((try Tasks.fifo(req.stderr, O_RDONLY), 2))
        }
        req.spec = ProtoAny(typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: try JSON.encode(process))
        let _: ProtoEmpty = try call(c, "Exec", req)
        var w = WaitRequest(); w.id = id; w.execID = execID
        let stream = try c.send(service: Tasks.task, method: "Wait", payload: w.protoBytes(), timeoutMs: Int32.max)
        var start = StartRequest(); start.id = id; start.execID = execID
        do { let _: StartResponse = try call(c, "Start", start) } catch {
            var d = DeleteRequest(); d.id = id; d.execID = execID
            let _: DeleteResponse? = try? call(c, "Delete", d)
            throw error
        }
        if tty {
            Terminal.relay(client: c, id: id, stdinFifo: stdinFifo, output: fifos[0].0) { r in
                var r = r
                r.execID = execID
                let _: ProtoEmpty? = try? self.call(c, "ResizePty", r)
            }
        } else {
            copyOutput(fifos)
        }
        let exit = try WaitResponse(protoBytes: try c.receive(stream: stream, timeoutMs: Int32.max, what: "wait"))
        var d = DeleteRequest(); d.id = id; d.execID = execID
        let _: DeleteResponse = try call(c, "Delete", d)
        return Int32(bitPattern: exit.exitStatus)
    }

    /// The environment a shim gets: ours, without containerd's event address, with the events file.
    var shimEnvironment: [String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TTRPC_ADDRESS")
        // No containerd to forward events to: the shim appends them where `skiffctl events` reads.
        env["SKIFF_EVENTS_FILE"] = eventsFile
        return env.map { "\($0.key)=\($0.value)" }
    }

    /// The shim's `start` as containerd runs it: cwd = bundle, combined output = the address.
    /// posix-style fork/exec (Foundation's Process closes every possible fd: ~35 ms here).
    func startShim(id: String, bundle: String) throws -> String {
        let args = [shimBinary, "-namespace", store.namespace, "-address", store.state + "/skiffctl", "-id", id, "start"]
        let r: SpawnResult
        do { r = try Spawn.run(path: shimBinary, args: args, env: shimEnvironment, stdin: [], timeout: 30, cwd: bundle) } catch {
            throw ManagerError("start shim", shimBinary, "\(error)", hint: "install containerd-shim-skiff-v2 next to skiffctl or on PATH")
        }
        let text = r.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, text.hasPrefix("unix://") else {
            throw ManagerError("start shim", id, text.isEmpty ? "exit status \(exitCode(fromWaitStatus: r.status))" : text)
        }
        return text
    }

    /// What the shim wrote down about output its file:// log could not take (a full disk).
    public func outputLosses(_ id: String) -> [String] {
        let dir = bundle(id)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("output-lost-") }.sorted()
            .compactMap { try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// A ttrpc failure as a sentence about the task: a closed connection is the shim's death.
    static func explain(_ error: Error, _ id: String) -> Error {
        guard let st = error as? TTRPCStatus else { return error }
        if st.code == .unavailable { return ManagerError("task", id, "its shim exited (\(st.message))", hint: "nothing of the task was kept") }
        return ManagerError("task", id, st.description)
    }
}

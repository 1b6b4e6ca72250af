import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffJSON
import SkiffCgroups
import SkiffRuntime

import SkiffTTRPC
import SkiffWire
import SkiffEventLoop
import SkiffShimIO

/// containerd.task.v2.Task (and v3, identical on the wire) over the in-process runtime. Runs on
/// the shim's single event-loop thread: runtime calls are synchronous, exits arrive through the
/// reaper between requests, and Wait replies are parked until then.
public final class TaskService {
    public static let services = ["containerd.task.v2.Task", "containerd.task.v3.Task"]
    static let optionsType = "containerd.runc.v1.Options"
    static let processSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Process"
    static let resourcesType = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"

    let loop: EventLoop
    let namespace: String
    let publisher: EventSink
    var containers: [String: ShimContainer] = [:]
    /// Exits of pids not known yet (a process that died before its start returned).
    var unmatchedExits: [pid_t: Int32] = [:]
    /// The runtime state root: `<root>/<namespace>`, root from the runc-style options.
    var runtimeRoot: String
    var skipUnavailableCgroups = getenv("SKIFF_CGROUPS_SKIP_UNAVAILABLE").map { String(cString: $0) == "1" } ?? false
    /// Called after a Shutdown that found no containers left.
    public var onShutdown: (() -> Void)?

    public static func defaultRoot(namespace: String) -> String { "/run/containerd/skiff/" + namespace }

    public init(loop: EventLoop, namespace: String, publisher: EventSink) {
        self.loop = loop
        self.namespace = namespace
        self.publisher = publisher
        runtimeRoot = TaskService.defaultRoot(namespace: namespace)
    }

    public var isEmpty: Bool { containers.isEmpty }

    func inProcess(root: String, skipUnavailableCgroups: Bool? = nil, systemdCgroup: Bool = false) -> InProcessBackend {
        var rt = Runtime(root: root)
        // SystemdCgroup in the runc options: cgroupsPath is slice:prefix:name, a systemd scope.
        rt.systemdCgroup = systemdCgroup
        rt.skipUnavailableCgroups = skipUnavailableCgroups ?? self.skipUnavailableCgroups
        // As runc's --rootless auto under the runc shim: a containerd in rootlesskit is root of a
        // user namespace, with cgroups only where delegated.
        rt.rootless = TaskService.rootless
        return InProcessBackend(runtime: rt)
    }

    static let rootless = Rootless.decide("auto")

    // MARK: registration

    public func register(on server: TTRPCServer) {
        for service in TaskService.services {
            unary(server, service, "Create") { (r: CreateTaskRequest) in try self.create(r) }
            unary(server, service, "Start") { (r: StartRequest) in try self.start(r) }
            unary(server, service, "Delete") { (r: DeleteRequest) in try self.delete(r) }
            unary(server, service, "State") { (r: StateRequest) in try self.state(r) }
            unary(server, service, "Exec") { (r: ExecProcessRequest) in try self.exec(r) }
            unary(server, service, "ResizePty") { (r: ResizePtyRequest) in try self.resizePty(r) }
            unary(server, service, "Kill") { (r: KillRequest) in try self.kill(r) }
            unary(server, service, "Pids") { (r: PidsRequest) in try self.pids(r) }
            unary(server, service, "CloseIO") { (r: CloseIORequest) in try self.closeIO(r) }
            unary(server, service, "Pause") { (r: PauseRequest) in try self.pause(r) }
            unary(server, service, "Resume") { (r: ResumeRequest) in try self.resume(r) }
            unary(server, service, "Checkpoint") { (_: CheckpointTaskRequest) -> ProtoEmpty in
                throw TTRPCStatus(.unimplemented, "checkpoint is not supported by containerd-shim-skiff-v2")
            }
            unary(server, service, "Update") { (r: UpdateTaskRequest) in try self.update(r) }
            unary(server, service, "Stats") { (r: StatsRequest) in try self.stats(r) }
            unary(server, service, "Connect") { (r: ConnectRequest) in try self.connect(r) }
            unary(server, service, "Shutdown") { (r: ShutdownRequest) in try self.shutdown(r) }
            server.register(service: service, method: "Wait") { payload, _, reply in
                do {
                    self.wait(try WaitRequest(protoBytes: payload), reply: reply)
                } catch {
                    reply(.failure(TaskService.status(error)))
                }
            }
        }
    }

    func unary<Req: ProtoMessage, Resp: ProtoMessage>(
        _ server: TTRPCServer, _ service: String, _ method: String, _ body: @escaping (Req) throws -> Resp
    ) {
        server.register(service: service, method: method) { payload, _, reply in
            do {
                let req = try Req(protoBytes: payload)
                let resp = try body(req)
                reply(.success(resp.protoBytes()))
            } catch {
                Logger.shared.debug("\(method): \(error)")
                reply(.failure(TaskService.status(error)))
            }
        }
    }

    /// Errors to ttrpc status codes, once (containerd's errgrpc): containerd turns the codes back
    /// into errdefs (ErrNotFound, ErrAlreadyExists, ...) and acts on them.
    static func status(_ error: Error) -> TTRPCStatus {
        if let s = error as? TTRPCStatus { return s }
        if error is ProtoError { return TTRPCStatus(.invalidArgument, "malformed request: \(error)") }
        guard let e = error as? SkiffError, let kind = e.effectiveKind else { return TTRPCStatus(.unknown, "\(error)") }
        let code: StatusCode
        switch kind {
        case .notExist: code = .notFound
        case .exists: code = .alreadyExists
        case .notRunning, .paused: code = .failedPrecondition
        case .invalid: code = .invalidArgument
        case .unsupported: code = .unimplemented
        case .permission: code = .permissionDenied
        }
        return TTRPCStatus(code, "\(error)")
    }

    func container(_ id: String) throws -> ShimContainer {
        guard let c = containers[id] else { throw TTRPCStatus(.notFound, "container \(quote(id)) not created: not found") }
        return c
    }

    func process(_ id: String, _ execID: String) throws -> (ShimContainer, ShimProcess) {
        let c = try container(id)
        guard let p = c.process(execID) else { throw TTRPCStatus(.notFound, "process \(quote(execID)) does not exist in container \(quote(id)): not found") }
        return (c, p)
    }

    // MARK: Create / Start / Delete

    func create(_ r: CreateTaskRequest) throws -> CreateTaskResponse {
        guard containers[r.id] == nil else { throw TTRPCStatus(.alreadyExists, "container \(quote(r.id)): already exists") }
        if !r.checkpoint.isEmpty { throw TTRPCStatus(.unimplemented, "create \(quote(r.id)): restoring from a checkpoint is not supported") }
        let bundle = FS.clean(r.bundle.isEmpty ? FS.cwd() : r.bundle)
        var options = RuncOptions()
        var skip = skipUnavailableCgroups
        if let any = r.options, !any.typeURL.isEmpty {
            if any.typeURL.hasSuffix(TaskService.optionsType), let o = try? RuncOptions(protoBytes: any.value) {
                options = o
            } else if any.typeURL.hasSuffix(RuntimeOptions.protoName), let o = try? RuntimeOptions(protoBytes: any.value), !o.configPath.isEmpty {
                // A runtime type containerd does not know: its options name our config file.
                let cfg = try RuntimeConfig.load(o.configPath)
                options = cfg.runc
                if let s = cfg.skipUnavailableCgroups { skip = s }
            }
        }
        let noPivot = options.noPivotRoot
        let (backend, root, binary) = try makeBackend(options, bundle: bundle, skipUnavailableCgroups: skip)
        // The `delete` action runs in a fresh process: tell it where the runtime state is.
        try FS.writeFileAtomic(
            bundle + "/skiff-shim.json",
            Array(
                ("{\"root\":" + jsonString(root) + ",\"binary\":" + jsonString(binary) + ",\"namespace\":"
                    + jsonString(namespace) + "}\n").utf8), mode: 0o644)
        unlink(ShimContainer.exitFile(bundle: bundle, execID: ""))

        let c = try ShimContainer.create(r, bundle: bundle, backend: backend, noPivot: noPivot, loop: loop, namespace: namespace)
        let initProcess = c.initProcess
        containers[r.id] = c
        servedAny = true
        var ev = TaskCreate()
        ev.containerID = r.id
        ev.bundle = bundle
        ev.rootfs = r.rootfs
        var tio = TaskIO()
        tio.stdin = r.stdin; tio.stdout = r.stdout; tio.stderr = r.stderr; tio.terminal = r.terminal
        ev.io = tio
        ev.checkpoint = r.checkpoint
        ev.pid = UInt32(initProcess.pid)
        publisher.publish(ev)
        // It may already be gone (its exit was reaped while we were still in create).
        matchUnreaped(c, initProcess)
        var resp = CreateTaskResponse()
        resp.pid = UInt32(initProcess.pid)
        return resp
    }

    func start(_ r: StartRequest) throws -> StartResponse {
        let (c, p) = try process(r.id, r.execID)
        try p.checkStartable()
        if p.isInit {
            try c.backend.start(id: c.id)
            p.phase = .running
            var ev = TaskStart()
            ev.containerID = c.id
            ev.pid = UInt32(p.pid)
            publisher.publish(ev)
        } else {
            guard c.initProcess.phase == .running else {
                throw TTRPCStatus(.failedPrecondition, "cannot start exec \(quote(p.execID)): container \(quote(c.id)) is not running")
            }
            let io = try ProcessIO.make(
                loop: loop, stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal,
                containerID: c.id, namespace: namespace)
            io.onLoss = TaskService.reportOutputLoss(bundle: c.bundle, process: p.execID)
            let pid: pid_t
            do {
                pid = try c.backend.exec(
                    id: c.id, process: p.spec!, processJSON: p.specJSON, stdio: io.childStdio,
                    consoleSocket: p.terminal ? io.consoleTheirs : nil)
                try io.processStarted()
            } catch {
                io.closeAll()
                throw error
            }
            p.started(pid: pid, io: io)
            var ev = TaskExecStarted()
            ev.containerID = c.id
            ev.execID = p.execID
            ev.pid = UInt32(pid)
            publisher.publish(ev)
        }
        matchUnreaped(c, p)
        var resp = StartResponse()
        resp.pid = UInt32(p.pid)
        return resp
    }

    func delete(_ r: DeleteRequest) throws -> DeleteResponse {
        let (c, p) = try process(r.id, r.execID)
        try p.checkDeletable(otherProcesses: Array(c.execs.values))
        if p.isInit {
            switch p.phase {
            case .running: break  // refused above
            case .created:
                // Never started: the runtime kills it; we reap it here so the status is ours.
                try? c.backend.delete(id: c.id, force: true)
                _ = Glibc.kill(p.pid, SIGKILL)
                let (w, st) = Sys.wait(p.pid)
                recordExit(c, p, waitStatus: w == p.pid ? st : Int32(SIGKILL), publish: false)
            case .stopped: break
            }
            p.io?.waitForOutput(timeoutMs: 2000)
            p.io?.closeAll()
            try c.backend.delete(id: c.id, force: true)
            for e in c.execs.values { e.io?.closeAll() }
            if c.rootfsMounted { RootfsMounts.unmountAll(c.bundle + "/rootfs") }
            containers[c.id] = nil
            var ev = TaskDelete()
            ev.containerID = c.id
            ev.pid = UInt32(p.pid)
            ev.exitStatus = p.exitStatus
            ev.exitedAt = p.exitedAt ?? TaskEvents.now()
            publisher.publish(ev)
        } else {
            p.io?.waitForOutput(timeoutMs: 2000)
            p.io?.closeAll()
            c.execs[p.execID] = nil
            unlink(ShimContainer.exitFile(bundle: c.bundle, execID: p.execID))
        }
        var resp = DeleteResponse()
        resp.pid = UInt32(p.pid)
        resp.exitStatus = p.exitStatus
        resp.exitedAt = p.exitedAt ?? TaskEvents.zeroTime
        return resp
    }

    /// In-process skiff unless the options name another runtime binary (BinaryName).
    func makeBackend(_ o: RuncOptions, bundle: String, skipUnavailableCgroups: Bool) throws -> (RuntimeBackend, String, String) {
        let wantsExternal = !o.binaryName.isEmpty && FS.basename(o.binaryName) != "skiff"
        if !wantsExternal {
            let root = o.root.isEmpty ? runtimeRoot : FS.clean(o.root + "/" + namespace)
            return (inProcess(root: root, skipUnavailableCgroups: skipUnavailableCgroups, systemdCgroup: o.systemdCgroup), root, "")
        }
        guard let binary = ExternalBackend.resolve(o.binaryName) else {
            throw SkiffError("runtime binary", o.binaryName, errno: ENOENT, hint: "BinaryName must be an absolute path or a name on PATH")
        }
        let root = FS.clean((o.root.isEmpty ? "/run/containerd/runc" : o.root) + "/" + namespace)
        var ext = ExternalBackend(binary: binary, root: root) { [weak self] id in self?.containers[id]?.bundle ?? bundle }
        ext.systemdCgroup = o.systemdCgroup
        return (ext, root, binary)
    }

    // MARK: Exec, State, Wait

    func exec(_ r: ExecProcessRequest) throws -> ProtoEmpty {
        let c = try container(r.id)
        // The exec id names files in the bundle (exec-<id>.exit): containerd's identifier rule.
        guard Identifier.isValid(r.execID) else {
            throw TTRPCStatus(
                .invalidArgument,
                "exec: invalid exec id \(quote(r.execID)): must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most \(Identifier.maxLength) characters")
        }
        guard c.execs[r.execID] == nil else { throw TTRPCStatus(.alreadyExists, "exec process \(quote(r.execID)): already exists") }
        guard c.initProcess.phase != .stopped else {
            throw TTRPCStatus(.failedPrecondition, "cannot exec in container \(quote(c.id)): it is stopped")
        }
        let spec = try withContext("exec \(quote(r.execID))") {
            try JSON.decode(Process.self, from: r.spec?.value ?? [], what: "process spec")
        }
        try Validation.validateProcess(spec)
        let p = ShimProcess(id: r.execID, execID: r.execID, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal)
        p.spec = spec
        p.specJSON = r.spec?.value ?? []
        c.execs[r.execID] = p
        var ev = TaskExecAdded()
        ev.containerID = c.id
        ev.execID = r.execID
        publisher.publish(ev)
        return ProtoEmpty()
    }

    func state(_ r: StateRequest) throws -> StateResponse {
        let (c, p) = try process(r.id, r.execID)
        var resp = StateResponse()
        resp.id = p.id
        resp.bundle = c.bundle
        resp.pid = UInt32(p.pid)
        resp.stdin = p.stdin; resp.stdout = p.stdout; resp.stderr = p.stderr
        resp.terminal = p.terminal
        resp.execID = p.execID
        resp.exitStatus = p.exitStatus
        resp.exitedAt = p.exitedAt ?? TaskEvents.zeroTime
        // A frozen cgroup is paused, also before start (runc pauses a created container too).
        let frozen = p.phase != .stopped && (c.cgroupDir.map { Cgroup2.fromDirectory($0).isFrozen() } ?? false)
        switch p.phase {
        case .created: resp.status = frozen ? .paused : .created
        case .stopped: resp.status = .stopped
        case .running: resp.status = frozen ? .paused : .running
        }
        return resp
    }

    func wait(_ r: WaitRequest, reply: @escaping TTRPCServer.Reply) {
        do {
            let (_, p) = try process(r.id, r.execID)
            if p.phase == .stopped {
                reply(.success(p.waitResponse.protoBytes()))
            } else {
                p.waiters.append(reply)
            }
        } catch {
            reply(.failure(TaskService.status(error)))
        }
    }

    // MARK: signals and control

    func kill(_ r: KillRequest) throws -> ProtoEmpty {
        let (c, p) = try process(r.id, r.execID)
        // A uint32 from the wire (an image's StopSignal reaches here through containerd): out
        // of range it is an error, never a trap that would take every container of this shim.
        guard r.signal <= 64 else { throw TTRPCStatus(.invalidArgument, "invalid signal \(r.signal): signals are 1-64") }
        let sig = r.signal == 0 ? SIGTERM : Int32(r.signal)
        try p.checkSignalable(all: r.all)
        if p.isInit {
            do { try c.backend.kill(id: c.id, signal: sig, all: r.all) } catch let e as SkiffError where e.kind == .notRunning {
                throw TTRPCStatus(.notFound, "process already finished: not found")
            }
        } else {
            if Glibc.kill(p.pid, sig) != 0 { throw SkiffError.sys("kill", "exec \(quote(p.execID)) pid \(p.pid)") }
        }
        return ProtoEmpty()
    }

    func resizePty(_ r: ResizePtyRequest) throws -> ProtoEmpty {
        let (_, p) = try process(r.id, r.execID)
        guard let io = p.io else { throw TTRPCStatus(.failedPrecondition, "process \(quote(p.id)) is not running") }
        try io.resize(width: r.width, height: r.height)
        return ProtoEmpty()
    }

    func closeIO(_ r: CloseIORequest) throws -> ProtoEmpty {
        let (_, p) = try process(r.id, r.execID)
        if r.stdin { p.io?.closeStdin() }
        return ProtoEmpty()
    }

    func pids(_ r: PidsRequest) throws -> PidsResponse {
        let c = try container(r.id)
        var byPid: [pid_t: String] = [:]
        for e in c.execs.values where e.pid > 0 { byPid[e.pid] = e.execID }
        var resp = PidsResponse()
        for pid in try c.backend.pids(id: c.id) {
            var info = ProcessInfo()
            info.pid = UInt32(pid)
            if let execID = byPid[pid] {
                var d = ProcessDetails()
                d.execID = execID
                info.info = ProtoAny(typeURL: ProcessDetails.protoName, value: d.protoBytes())
            }
            resp.processes.append(info)
        }
        return resp
    }

    func pause(_ r: PauseRequest) throws -> ProtoEmpty {
        let c = try container(r.id)
        try c.backend.pause(id: c.id)
        publisher.publish(TaskPaused.with { $0.containerID = c.id })
        return ProtoEmpty()
    }

    func resume(_ r: ResumeRequest) throws -> ProtoEmpty {
        let c = try container(r.id)
        try c.backend.resume(id: c.id)
        publisher.publish(TaskResumed.with { $0.containerID = c.id })
        return ProtoEmpty()
    }

    func update(_ r: UpdateTaskRequest) throws -> ProtoEmpty {
        let c = try container(r.id)
        try c.backend.update(id: c.id, resourcesJSON: r.resources?.value ?? [])
        return ProtoEmpty()
    }

    func stats(_ r: StatsRequest) throws -> StatsResponse {
        let c = try container(r.id)
        guard let dir = c.cgroupDir else { throw TTRPCStatus(.notFound, "stats \(quote(c.id)): the container has no cgroup") }
        var resp = StatsResponse()
        var source = CgroupMetrics.Source.cgroup
        let metrics = CgroupMetrics.read(Cgroup2.fromDirectory(dir), memorySource: &source)
        if source != .cgroup && !c.toldMetricsSource {
            c.toldMetricsSource = true
            Logger.shared.warn(
                "stats of \(quote(c.id)): memory and pids from \(source.rawValue) (the cgroup v2 hierarchy has no memory or pids controller here)")
        }
        resp.stats = ProtoAny(typeURL: Metrics.protoName, value: metrics.protoBytes())
        return resp
    }

    func connect(_ r: ConnectRequest) throws -> ConnectResponse {
        var resp = ConnectResponse()
        resp.shimPid = UInt32(getpid())
        if let c = containers[r.id] { resp.taskPid = UInt32(c.initProcess.pid) }
        resp.version = SkiffVersion.version
        return resp
    }

    var hasStoppedContainer: Bool { containers.values.contains { $0.initProcess.phase == .stopped } }

    /// Output a file:// log could not take (its disk is full) is written down in the bundle, in
    /// `output-lost`, where `skiffctl tasks ls` reports it; not only in the shim's own log.
    static func reportOutputLoss(bundle: String, process: String) -> (String, Int, String) -> Void {
        { stream, bytes, why in
            let line = "\(process) \(stream): \(bytes) bytes lost: \(why)\n"
            try? FS.writeFileAtomic(bundle + "/output-lost-" + (process.isEmpty ? "init" : process) + "-" + stream, Array(line.utf8), mode: 0o644)
        }
    }

    /// Whether this shim has served a container (a shim with none left after that is done).
    var servedAny = false

    /// Containers deleted behind our back (e.g. `skiff delete --force` on the runtime's state):
    /// their init has exited and the runtime no longer has them. They go, with a TaskDelete
    /// event; true when that leaves the shim with nothing to serve, so it can exit instead of
    /// waiting forever for a Delete nobody will send.
    public func dropVanished() -> Bool {
        for c in containers.values where c.initProcess.phase == .stopped && !c.backend.exists(id: c.id) {
            guard c.execs.values.allSatisfy({ $0.phase != .running }) else { continue }
            c.initProcess.io?.closeAll()
            for e in c.execs.values { e.io?.closeAll() }
            if c.rootfsMounted { RootfsMounts.unmountAll(c.bundle + "/rootfs") }
            containers[c.id] = nil
            var ev = TaskDelete()
            ev.containerID = c.id
            ev.pid = UInt32(c.initProcess.pid)
            ev.exitStatus = c.initProcess.exitStatus
            ev.exitedAt = c.initProcess.exitedAt ?? TaskEvents.now()
            publisher.publish(ev)
            Logger.shared.warn("shim: container \(quote(c.id)) was deleted from the runtime behind the shim's back")
        }
        return servedAny && containers.isEmpty
    }

    func shutdown(_ r: ShutdownRequest) throws -> ProtoEmpty {
        if containers.isEmpty || r.now {
            // After the reply has gone out.
            loop.after(ms: 0) { [weak self] in self?.onShutdown?() }
        }
        return ProtoEmpty()
    }

    // MARK: exits

    /// A child exited (from the reaper). Processes are matched by pid; unknown pids are kept a
    /// while in case their start has not returned yet.
    public func childExited(pid: pid_t, waitStatus: Int32) {
        for c in containers.values {
            if c.initProcess.pid == pid && c.initProcess.phase != .stopped {
                recordExit(c, c.initProcess, waitStatus: waitStatus, publish: true)
                return
            }
            for e in c.execs.values where e.pid == pid && e.phase != .stopped {
                recordExit(c, e, waitStatus: waitStatus, publish: true)
                return
            }
        }
        if unmatchedExits.count > 1024 { unmatchedExits.removeAll() }
        unmatchedExits[pid] = waitStatus
    }

    func matchUnreaped(_ c: ShimContainer, _ p: ShimProcess) {
        if let st = unmatchedExits.removeValue(forKey: p.pid) { recordExit(c, p, waitStatus: st, publish: true) }
    }

    /// Order: the exit goes to disk first, then the output is drained, then TaskOOM (if the
    /// kernel OOM-killed in the container), then TaskExit, then the parked Waits.
    func recordExit(_ c: ShimContainer, _ p: ShimProcess, waitStatus: Int32, publish: Bool) {
        let now = TaskEvents.now()
        let status = shimExitStatus(waitStatus)
        // On disk first: a Wait answered below may make containerd delete us at once.
        let rec = ExitRecord(pid: p.pid, status: status, seconds: now.seconds, nanos: now.nanos)
        do { try FS.writeFileAtomic(ShimContainer.exitFile(bundle: c.bundle, execID: p.execID), Array(rec.text.utf8), mode: 0o644) } catch {
            Logger.shared.error("record exit of \(quote(p.id)): \(error)")
        }
        p.exited(status: status, at: now)
        if publish {
            if let dir = c.cgroupDir, let kills = Cgroup2.fromDirectory(dir).oomKills(), kills > c.oomKills {
                c.oomKills = kills
                var oom = TaskOOM()
                oom.containerID = c.id
                publisher.publish(oom)
            }
            var ev = TaskExit()
            ev.containerID = c.id
            ev.id = p.id
            ev.pid = UInt32(p.pid)
            ev.exitStatus = p.exitStatus
            ev.exitedAt = now
            publisher.publish(ev)
        }
        p.answerWaiters()
        // Without its own pid namespace, the init's death does not take the others with it:
        // the rest of its cgroup is killed, as containerd's runc shim does (a background child
        // holding stdout would otherwise outlive a stopped container, cgroup and all).
        if p.isInit {
            if !c.ownsPidNamespace { try? c.backend.kill(id: c.id, signal: SIGKILL, all: true) }
            for e in c.execs.values where e.phase == .running { _ = Glibc.kill(e.pid, SIGKILL) }
        }
    }
}

/// Where task events go: containerd's ttrpc Forward, or a file for the daemonless manager.
public protocol EventSink: AnyObject {
    func publish<M: TaskEventMessage>(_ event: M)
}

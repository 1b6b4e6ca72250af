import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffJSON
import SkiffCgroups
import SkiffRuntime
import SkiffProto
import SkiffTTRPC
import SwiftProtobuf

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

    func runtime() -> Runtime {
        var rt = Runtime(root: runtimeRoot)
        rt.skipUnavailableCgroups = skipUnavailableCgroups
        return rt
    }

    // MARK: registration

    public func register(on server: TTRPCServer) {
        for service in TaskService.services {
            unary(server, service, "Create") { (r: Containerd_Task_V2_CreateTaskRequest) in try self.create(r) }
            unary(server, service, "Start") { (r: Containerd_Task_V2_StartRequest) in try self.start(r) }
            unary(server, service, "Delete") { (r: Containerd_Task_V2_DeleteRequest) in try self.delete(r) }
            unary(server, service, "State") { (r: Containerd_Task_V2_StateRequest) in try self.state(r) }
            unary(server, service, "Exec") { (r: Containerd_Task_V2_ExecProcessRequest) in try self.exec(r) }
            unary(server, service, "ResizePty") { (r: Containerd_Task_V2_ResizePtyRequest) in try self.resizePty(r) }
            unary(server, service, "Kill") { (r: Containerd_Task_V2_KillRequest) in try self.kill(r) }
            unary(server, service, "Pids") { (r: Containerd_Task_V2_PidsRequest) in try self.pids(r) }
            unary(server, service, "CloseIO") { (r: Containerd_Task_V2_CloseIORequest) in try self.closeIO(r) }
            unary(server, service, "Pause") { (r: Containerd_Task_V2_PauseRequest) in try self.pause(r) }
            unary(server, service, "Resume") { (r: Containerd_Task_V2_ResumeRequest) in try self.resume(r) }
            unary(server, service, "Checkpoint") { (_: Containerd_Task_V2_CheckpointTaskRequest) -> Google_Protobuf_Empty in
                throw TTRPCStatus(.unimplemented, "checkpoint is not supported by containerd-shim-skiff-v2")
            }
            unary(server, service, "Update") { (r: Containerd_Task_V2_UpdateTaskRequest) in try self.update(r) }
            unary(server, service, "Stats") { (r: Containerd_Task_V2_StatsRequest) in try self.stats(r) }
            unary(server, service, "Connect") { (r: Containerd_Task_V2_ConnectRequest) in try self.connect(r) }
            unary(server, service, "Shutdown") { (r: Containerd_Task_V2_ShutdownRequest) in try self.shutdown(r) }
            server.register(service: service, method: "Wait") { payload, _, reply in
                do {
                    self.wait(try Containerd_Task_V2_WaitRequest(serializedBytes: payload), reply: reply)
                } catch {
                    reply(.failure(TaskService.status(error)))
                }
            }
        }
    }

    func unary<Req: SwiftProtobuf.Message, Resp: SwiftProtobuf.Message>(
        _ server: TTRPCServer, _ service: String, _ method: String, _ body: @escaping (Req) throws -> Resp) {
        server.register(service: service, method: method) { payload, _, reply in
            do {
                let req = try Req(serializedBytes: payload)
                let resp = try body(req)
                reply(.success(try resp.serializedBytes()))
            } catch {
                Logger.shared.debug("\(method): \(error)")
                reply(.failure(TaskService.status(error)))
            }
        }
    }

    static func status(_ error: Error) -> TTRPCStatus {
        if let s = error as? TTRPCStatus { return s }
        if error is SwiftProtobuf.BinaryDecodingError { return TTRPCStatus(.invalidArgument, "malformed request: \(error)") }
        return TTRPCStatus(.unknown, "\(error)")
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

    func create(_ r: Containerd_Task_V2_CreateTaskRequest) throws -> Containerd_Task_V2_CreateTaskResponse {
        guard containers[r.id] == nil else { throw TTRPCStatus(.alreadyExists, "container \(quote(r.id)): already exists") }
        if !r.checkpoint.isEmpty { throw TTRPCStatus(.unimplemented, "create \(quote(r.id)): restoring from a checkpoint is not supported") }
        let bundle = FS.clean(r.bundle.isEmpty ? FS.cwd() : r.bundle)
        var noPivot = false
        if r.hasOptions && !r.options.typeURL.isEmpty {
            // Only the runc options apply; containerd sends other runtimes' option types too.
            if r.options.typeURL.hasSuffix(TaskService.optionsType),
               let o = try? Containerd_Runc_V1_Options(serializedBytes: r.options.value) {
                if !o.root.isEmpty { runtimeRoot = FS.clean(o.root + "/" + namespace) }
                noPivot = o.noPivotRoot
                if !o.binaryName.isEmpty && FS.basename(o.binaryName) != "skiff" {
                    Logger.shared.warn("create \(quote(r.id)): BinaryName \(quote(o.binaryName)) ignored: this shim runs the runtime in-process")
                }
            }
        }
        // The `delete` action runs in a fresh process: tell it where the runtime state is.
        try FS.writeFileAtomic(bundle + "/skiff-shim.json",
                               Array(("{\"root\":" + jsonString(runtimeRoot) + ",\"namespace\":" + jsonString(namespace) + "}\n").utf8),
                               mode: 0o644)
        unlink(ShimContainer.exitFile(bundle: bundle, execID: ""))

        let initProcess = ShimProcess(id: r.id, execID: "", stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal)
        let c = ShimContainer(id: r.id, bundle: bundle, initProcess: initProcess, rootfs: r.rootfs)
        var undo: [() -> Void] = []
        do {
            if !r.rootfs.isEmpty {
                let target = bundle + "/rootfs"
                try FS.mkdirAll(target, mode: 0o711)
                try RootfsMounts.mount(r.rootfs, on: target)
                c.rootfsMounted = true
                undo.append { RootfsMounts.unmountAll(target) }
            }
            let io = try ProcessIO.make(loop: loop, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal,
                                        containerID: r.id, namespace: namespace)
            undo.append { io.closeAll() }
            var opts = CreateOptions(bundle: bundle)
            opts.noPivot = noPivot
            opts.stdio = io.childStdio
            if r.terminal { opts.consoleSocketFd = io.consoleTheirs }
            let rt = runtime()
            let pid = try rt.create(id: r.id, options: opts)
            undo.append { try? rt.delete(id: r.id, force: true) }
            initProcess.pid = pid
            initProcess.io = io
            try io.processStarted()
            if let rec = try? rt.store.load(r.id) {
                c.cgroupDir = rec.cgroupPath
                c.oomKills = rec.cgroupPath.flatMap { Cgroup2.fromDirectory($0).oomKills() } ?? 0
            }
        } catch {
            for u in undo.reversed() { u() }
            throw error
        }
        containers[r.id] = c
        var ev = Containerd_Events_TaskCreate()
        ev.containerID = r.id
        ev.bundle = bundle
        ev.rootfs = r.rootfs
        ev.io.stdin = r.stdin; ev.io.stdout = r.stdout; ev.io.stderr = r.stderr; ev.io.terminal = r.terminal
        ev.checkpoint = r.checkpoint
        ev.pid = UInt32(initProcess.pid)
        publisher.publish(ev)
        // It may already be gone (its exit was reaped while we were still in create).
        matchUnreaped(c, initProcess)
        var resp = Containerd_Task_V2_CreateTaskResponse()
        resp.pid = UInt32(initProcess.pid)
        return resp
    }

    func start(_ r: Containerd_Task_V2_StartRequest) throws -> Containerd_Task_V2_StartResponse {
        let (c, p) = try process(r.id, r.execID)
        guard p.phase == .created else {
            throw TTRPCStatus(.failedPrecondition, "process \(quote(p.id)) was already started")
        }
        if p.isInit {
            try runtime().start(id: c.id)
            p.phase = .running
            var ev = Containerd_Events_TaskStart()
            ev.containerID = c.id
            ev.pid = UInt32(p.pid)
            publisher.publish(ev)
        } else {
            guard c.initProcess.phase == .running else {
                throw TTRPCStatus(.failedPrecondition, "cannot start exec \(quote(p.execID)): container \(quote(c.id)) is not running")
            }
            let io = try ProcessIO.make(loop: loop, stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal,
                                        containerID: c.id, namespace: namespace)
            var opts = ExecOptions(process: p.spec!)
            opts.stdio = io.childStdio
            if p.terminal { opts.consoleSocketFd = io.consoleTheirs }
            let pid: pid_t
            do {
                pid = try runtime().execDetached(id: c.id, options: opts)
                try io.processStarted()
            } catch {
                io.closeAll()
                throw error
            }
            p.pid = pid
            p.io = io
            p.phase = .running
            var ev = Containerd_Events_TaskExecStarted()
            ev.containerID = c.id
            ev.execID = p.execID
            ev.pid = UInt32(pid)
            publisher.publish(ev)
        }
        matchUnreaped(c, p)
        var resp = Containerd_Task_V2_StartResponse()
        resp.pid = UInt32(p.pid)
        return resp
    }

    func delete(_ r: Containerd_Task_V2_DeleteRequest) throws -> Containerd_Task_V2_DeleteResponse {
        let (c, p) = try process(r.id, r.execID)
        if p.isInit {
            if !c.execs.values.allSatisfy({ $0.phase != .running }) {
                throw TTRPCStatus(.failedPrecondition, "cannot delete container \(quote(c.id)): exec processes are still running")
            }
            switch p.phase {
            case .running: throw TTRPCStatus(.failedPrecondition, "cannot delete a running container \(quote(c.id))")
            case .created:
                // Never started: the runtime kills it; we reap it here so the status is ours.
                try? runtime().delete(id: c.id, force: true)
                _ = Glibc.kill(p.pid, SIGKILL)
                let (w, st) = Sys.wait(p.pid)
                recordExit(c, p, waitStatus: w == p.pid ? st : Int32(SIGKILL), publish: false)
            case .stopped: break
            }
            p.io?.waitForOutput(timeoutMs: 2000)
            p.io?.closeAll()
            do { try runtime().delete(id: c.id, force: true) } catch let e as SkiffError where e.description.contains("does not exist") {}
            for e in c.execs.values { e.io?.closeAll() }
            if c.rootfsMounted { RootfsMounts.unmountAll(c.bundle + "/rootfs") }
            containers[c.id] = nil
            var ev = Containerd_Events_TaskDelete()
            ev.containerID = c.id
            ev.pid = UInt32(p.pid)
            ev.exitStatus = p.exitStatus
            ev.exitedAt = p.exitedAt ?? TaskEvents.now()
            publisher.publish(ev)
        } else {
            if p.phase == .running { throw TTRPCStatus(.failedPrecondition, "cannot delete running exec \(quote(p.execID))") }
            p.io?.waitForOutput(timeoutMs: 2000)
            p.io?.closeAll()
            c.execs[p.execID] = nil
            unlink(ShimContainer.exitFile(bundle: c.bundle, execID: p.execID))
        }
        var resp = Containerd_Task_V2_DeleteResponse()
        resp.pid = UInt32(p.pid)
        resp.exitStatus = p.exitStatus
        resp.exitedAt = p.exitedAt ?? TaskEvents.zeroTime
        return resp
    }

    // MARK: Exec, State, Wait

    func exec(_ r: Containerd_Task_V2_ExecProcessRequest) throws -> Google_Protobuf_Empty {
        let c = try container(r.id)
        guard !r.execID.isEmpty else { throw TTRPCStatus(.invalidArgument, "exec: an exec id is required") }
        guard c.execs[r.execID] == nil else { throw TTRPCStatus(.alreadyExists, "exec process \(quote(r.execID)): already exists") }
        guard c.initProcess.phase != .stopped else {
            throw TTRPCStatus(.failedPrecondition, "cannot exec in container \(quote(c.id)): it is stopped")
        }
        let spec = try withContext("exec \(quote(r.execID))") {
            try JSON.decode(Process.self, from: [UInt8](r.spec.value), what: "process spec")
        }
        try Validation.validateProcess(spec)
        let p = ShimProcess(id: r.execID, execID: r.execID, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal)
        p.spec = spec
        c.execs[r.execID] = p
        var ev = Containerd_Events_TaskExecAdded()
        ev.containerID = c.id
        ev.execID = r.execID
        publisher.publish(ev)
        return Google_Protobuf_Empty()
    }

    func state(_ r: Containerd_Task_V2_StateRequest) throws -> Containerd_Task_V2_StateResponse {
        let (c, p) = try process(r.id, r.execID)
        var resp = Containerd_Task_V2_StateResponse()
        resp.id = p.id
        resp.bundle = c.bundle
        resp.pid = UInt32(p.pid)
        resp.stdin = p.stdin; resp.stdout = p.stdout; resp.stderr = p.stderr
        resp.terminal = p.terminal
        resp.execID = p.execID
        resp.exitStatus = p.exitStatus
        resp.exitedAt = p.exitedAt ?? TaskEvents.zeroTime
        switch p.phase {
        case .created: resp.status = .created
        case .stopped: resp.status = .stopped
        case .running:
            if let dir = c.cgroupDir, Cgroup2.fromDirectory(dir).isFrozen() { resp.status = .paused } else { resp.status = .running }
        }
        return resp
    }

    func wait(_ r: Containerd_Task_V2_WaitRequest, reply: @escaping TTRPCServer.Reply) {
        do {
            let (_, p) = try process(r.id, r.execID)
            if p.phase == .stopped {
                reply(.success((try? p.waitResponse.serializedBytes()) ?? []))
            } else {
                p.waiters.append(reply)
            }
        } catch {
            reply(.failure(TaskService.status(error)))
        }
    }

    // MARK: signals and control

    func kill(_ r: Containerd_Task_V2_KillRequest) throws -> Google_Protobuf_Empty {
        let (c, p) = try process(r.id, r.execID)
        let sig = Int32(r.signal == 0 ? UInt32(SIGTERM) : r.signal)
        if p.isInit {
            if p.phase == .stopped && !r.all { throw TTRPCStatus(.notFound, "process already finished: not found") }
            do { try runtime().kill(id: c.id, signal: sig, all: r.all) } catch let e as SkiffError where e.description.contains("not running") {
                throw TTRPCStatus(.notFound, "process already finished: not found")
            }
        } else {
            guard p.phase == .running, p.pid > 0 else {
                throw TTRPCStatus(p.phase == .stopped ? .notFound : .failedPrecondition,
                                  p.phase == .stopped ? "process already finished: not found" : "exec \(quote(p.execID)) is not started")
            }
            if Glibc.kill(p.pid, sig) != 0 { throw SkiffError.sys("kill", "exec \(quote(p.execID)) pid \(p.pid)") }
        }
        return Google_Protobuf_Empty()
    }

    func resizePty(_ r: Containerd_Task_V2_ResizePtyRequest) throws -> Google_Protobuf_Empty {
        let (_, p) = try process(r.id, r.execID)
        guard let io = p.io else { throw TTRPCStatus(.failedPrecondition, "process \(quote(p.id)) is not running") }
        try io.resize(width: r.width, height: r.height)
        return Google_Protobuf_Empty()
    }

    func closeIO(_ r: Containerd_Task_V2_CloseIORequest) throws -> Google_Protobuf_Empty {
        let (_, p) = try process(r.id, r.execID)
        if r.stdin { p.io?.closeStdin() }
        return Google_Protobuf_Empty()
    }

    func pids(_ r: Containerd_Task_V2_PidsRequest) throws -> Containerd_Task_V2_PidsResponse {
        let c = try container(r.id)
        var byPid: [pid_t: String] = [:]
        for e in c.execs.values where e.pid > 0 { byPid[e.pid] = e.execID }
        var resp = Containerd_Task_V2_PidsResponse()
        for pid in try runtime().pids(id: c.id) {
            var info = Containerd_Types_ProcessInfo()
            info.pid = UInt32(pid)
            if let execID = byPid[pid] {
                var d = Containerd_Runc_V1_ProcessDetails()
                d.execID = execID
                info.info.typeURL = "containerd.runc.v1.ProcessDetails"
                info.info.value = try d.serializedBytes()
            }
            resp.processes.append(info)
        }
        return resp
    }

    func pause(_ r: Containerd_Task_V2_PauseRequest) throws -> Google_Protobuf_Empty {
        let c = try container(r.id)
        try runtime().pause(id: c.id)
        var ev = Containerd_Events_TaskPaused()
        ev.containerID = c.id
        publisher.publish(ev)
        return Google_Protobuf_Empty()
    }

    func resume(_ r: Containerd_Task_V2_ResumeRequest) throws -> Google_Protobuf_Empty {
        let c = try container(r.id)
        try runtime().resume(id: c.id)
        var ev = Containerd_Events_TaskResumed()
        ev.containerID = c.id
        publisher.publish(ev)
        return Google_Protobuf_Empty()
    }

    func update(_ r: Containerd_Task_V2_UpdateTaskRequest) throws -> Google_Protobuf_Empty {
        let c = try container(r.id)
        let res = try JSON.decode(Resources.self, from: [UInt8](r.resources.value), what: "update resources")
        try runtime().update(id: c.id, resources: res)
        return Google_Protobuf_Empty()
    }

    func stats(_ r: Containerd_Task_V2_StatsRequest) throws -> Containerd_Task_V2_StatsResponse {
        let c = try container(r.id)
        guard let dir = c.cgroupDir else { throw TTRPCStatus(.notFound, "stats \(quote(c.id)): the container has no cgroup") }
        var resp = Containerd_Task_V2_StatsResponse()
        resp.stats.typeURL = "io.containerd.cgroups.v2.Metrics"
        resp.stats.value = try CgroupMetrics.read(Cgroup2.fromDirectory(dir)).serializedBytes()
        return resp
    }

    func connect(_ r: Containerd_Task_V2_ConnectRequest) throws -> Containerd_Task_V2_ConnectResponse {
        var resp = Containerd_Task_V2_ConnectResponse()
        resp.shimPid = UInt32(getpid())
        if let c = containers[r.id] { resp.taskPid = UInt32(c.initProcess.pid) }
        resp.version = SkiffVersion.version
        return resp
    }

    func shutdown(_ r: Containerd_Task_V2_ShutdownRequest) throws -> Google_Protobuf_Empty {
        if containers.isEmpty || r.now {
            // After the reply has gone out.
            loop.after(ms: 0) { [weak self] in self?.onShutdown?() }
        }
        return Google_Protobuf_Empty()
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
        p.phase = .stopped
        p.exitStatus = shimExitStatus(waitStatus)
        let now = TaskEvents.now()
        p.exitedAt = now
        let rec = ExitRecord(pid: p.pid, status: p.exitStatus, seconds: now.seconds, nanos: now.nanos)
        do { try FS.writeFileAtomic(ShimContainer.exitFile(bundle: c.bundle, execID: p.execID), Array(rec.text.utf8), mode: 0o644) } catch {
            Logger.shared.error("record exit of \(quote(p.id)): \(error)")
        }
        p.io?.drain()
        if publish {
            if let dir = c.cgroupDir, let kills = Cgroup2.fromDirectory(dir).oomKills(), kills > c.oomKills {
                c.oomKills = kills
                var oom = Containerd_Events_TaskOOM()
                oom.containerID = c.id
                publisher.publish(oom)
            }
            var ev = Containerd_Events_TaskExit()
            ev.containerID = c.id
            ev.id = p.id
            ev.pid = UInt32(p.pid)
            ev.exitStatus = p.exitStatus
            ev.exitedAt = now
            publisher.publish(ev)
        }
        let bytes = (try? p.waitResponse.serializedBytes()) ?? []
        let waiters = p.waiters
        p.waiters = []
        for w in waiters { w(.success(bytes)) }
        // Without its own pid namespace, the init's death does not take the others with it.
        if p.isInit {
            for e in c.execs.values where e.phase == .running { _ = Glibc.kill(e.pid, SIGKILL) }
        }
    }
}

/// Where task events go: containerd's ttrpc Forward, or a file for the daemonless manager.
public protocol EventSink: AnyObject {
    func publish<M: SwiftProtobuf.Message>(_ event: M)
}

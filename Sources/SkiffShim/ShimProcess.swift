import Glibc
import SkiffSys
import SkiffSpec

import SkiffTTRPC
import SkiffWire
import SkiffCgroups
import SkiffEventLoop
import SkiffShimIO

/// One process the shim manages: a container's init or an exec'd process.
final class ShimProcess {
    enum Phase { case created, running, stopped }

    /// The process id containerd uses: the container id for the init, else the exec id.
    let id: String
    let execID: String
    let stdin: String, stdout: String, stderr: String
    let terminal: Bool
    var pid: pid_t = 0
    var phase = Phase.created
    var exitStatus: UInt32 = 0
    var exitedAt: ProtoTimestamp?
    var io: ProcessIO?
    /// Wait calls parked until the exit.
    var waiters: [TTRPCServer.Reply] = []
    /// The exec's OCI process (inits use config.json).
    var spec: Process?
    /// The same, as containerd sent it (an external runtime gets it verbatim).
    var specJSON: [UInt8] = []

    init(id: String, execID: String, stdin: String, stdout: String, stderr: String, terminal: Bool) {
        self.id = id; self.execID = execID
        self.stdin = stdin; self.stdout = stdout; self.stderr = stderr
        self.terminal = terminal
    }

    var isInit: Bool { execID.isEmpty }

    var waitResponse: WaitResponse {
        var r = WaitResponse()
        r.exitStatus = exitStatus
        r.exitedAt = exitedAt ?? TaskEvents.zeroTime
        return r
    }

    // MARK: transitions (containerd's process/init_state.go: each state says what it allows)

    /// created → running; anything else was started before.
    func checkStartable() throws {
        guard phase == .created else { throw TTRPCStatus(.failedPrecondition, "process \(quote(id)) was already started") }
    }

    /// An exec'd process that the runtime started.
    func started(pid: pid_t, io: ProcessIO) {
        self.pid = pid
        self.io = io
        phase = .running
    }

    /// Delete: a running process stays (an init also while any exec of its container runs).
    func checkDeletable(otherProcesses: [ShimProcess]) throws {
        if isInit && otherProcesses.contains(where: { $0.phase == .running }) {
            throw TTRPCStatus(.failedPrecondition, "cannot delete container \(quote(id)): exec processes are still running")
        }
        guard phase != .running else {
            throw TTRPCStatus(.failedPrecondition, isInit ? "cannot delete a running container \(quote(id))" : "cannot delete running exec \(quote(execID))")
        }
    }

    /// Signals: a finished process is NotFound (containerd's runc shim), an exec not yet
    /// started cannot take one.
    func checkSignalable(all: Bool) throws {
        if phase == .stopped && !(isInit && all) { throw TTRPCStatus(.notFound, "process already finished: not found") }
        if !isInit && (phase != .running || pid <= 0) {
            throw TTRPCStatus(.failedPrecondition, "exec \(quote(execID)) is not started")
        }
    }

    /// running → stopped: the status, and what is left of the output taken in.
    func exited(status: UInt32, at time: ProtoTimestamp) {
        phase = .stopped
        exitStatus = status
        exitedAt = time
        io?.drain()
    }

    /// Every parked Wait gets the exit (after TaskExit is published, as containerd's shim does).
    func answerWaiters() {
        let bytes = waitResponse.protoBytes()
        let parked = waiters
        waiters = []
        for w in parked { w(.success(bytes)) }
    }
}

/// One container in this shim (a shim serves several when containerd groups them).
final class ShimContainer {
    let id: String
    let bundle: String
    let initProcess: ShimProcess
    var execs: [String: ShimProcess] = [:]
    let rootfs: [SkiffWire.Mount]
    let backend: RuntimeBackend
    var rootfsMounted = false
    var cgroupDir: String?
    /// Whether the init is pid 1 of a pid namespace of its own: its death then takes every
    /// other process of the container with it; otherwise the shim does that (see recordExit).
    var ownsPidNamespace = true
    /// The shim's log said once where this container's memory figures come from.
    var toldMetricsSource = false
    /// memory.events oom_kill last seen, to publish TaskOOM once per kill.
    var oomKills: UInt64 = 0

    init(id: String, bundle: String, initProcess: ShimProcess, rootfs: [SkiffWire.Mount], backend: RuntimeBackend) {
        self.id = id; self.bundle = bundle; self.initProcess = initProcess; self.rootfs = rootfs; self.backend = backend
    }

    func process(_ execID: String) -> ShimProcess? {
        execID.isEmpty ? initProcess : execs[execID]
    }

    /// Exit records live next to the bundle's other runtime files; the `delete` action and a
    /// restarted shim read them, so no exit status is lost when nobody was listening.
    static func exitFile(bundle: String, execID: String) -> String {
        bundle + "/" + (execID.isEmpty ? "init" : "exec-" + execID) + ".exit"
    }
}

extension ShimContainer {
    /// A container as Create asks for it (containerd's runc NewContainer): the rootfs mounted,
    /// the init's IO, the runtime's create; on any failure undone in reverse order.
    static func create(
        _ r: CreateTaskRequest, bundle: String, backend: RuntimeBackend, noPivot: Bool,
        loop: EventLoop, namespace: String
    ) throws -> ShimContainer {
        let initProcess = ShimProcess(id: r.id, execID: "", stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal)
        let c = ShimContainer(id: r.id, bundle: bundle, initProcess: initProcess, rootfs: r.rootfs, backend: backend)
        var undo: [() -> Void] = []
        do {
            if !r.rootfs.isEmpty {
                let target = bundle + "/rootfs"
                try FS.mkdirAll(target, mode: 0o711)
                try RootfsMounts.mount(r.rootfs, on: target)
                c.rootfsMounted = true
                undo.append { RootfsMounts.unmountAll(target) }
            }
            let io = try ProcessIO.make(
                loop: loop, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal,
                containerID: r.id, namespace: namespace)
            io.onLoss = TaskService.reportOutputLoss(bundle: bundle, process: r.id)
            undo.append { io.closeAll() }
            let pid = try backend.create(
                id: r.id, bundle: bundle, stdio: io.childStdio,
                consoleSocket: r.terminal ? io.consoleTheirs : nil, noPivot: noPivot)
            undo.append { try? backend.delete(id: r.id, force: true) }
            initProcess.pid = pid
            initProcess.io = io
            try io.processStarted()
            c.cgroupDir = cgroupDirectory(ofPid: pid)
            c.ownsPidNamespace = Proc.isPidOneOfItsNamespace(pid) ?? true
            c.oomKills = c.cgroupDir.flatMap { Cgroup2.fromDirectory($0).oomKills() } ?? 0
        } catch {
            for u in undo.reversed() { u() }
            throw error
        }
        return c
    }
}

/// What the shim persists about an exit: "pid status seconds nanos".
struct ExitRecord: Equatable {
    var pid: pid_t
    var status: UInt32
    var seconds: Int64
    var nanos: Int32

    var text: String { "\(pid) \(status) \(seconds) \(nanos)\n" }

    static func parse(_ s: String) -> ExitRecord? {
        let f = s.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 4, let p = pid_t(f[0]), let st = UInt32(f[1]), let sec = Int64(f[2]), let ns = Int32(f[3]) else { return nil }
        return ExitRecord(pid: p, status: st, seconds: sec, nanos: ns)
    }

    static func load(_ path: String) -> ExitRecord? {
        (try? FS.readString(path)).flatMap(parse)
    }

    var timestamp: ProtoTimestamp { ProtoTimestamp(seconds: seconds, nanos: nanos) }
}

/// containerd's exit status convention: the code, or 128 + the signal.
func shimExitStatus(_ waitStatus: Int32) -> UInt32 {
    UInt32(bitPattern: exitCode(fromWaitStatus: waitStatus))
}

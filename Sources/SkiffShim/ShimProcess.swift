import Glibc
import SkiffSys
import SkiffSpec

import SkiffTTRPC
import SkiffWire

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

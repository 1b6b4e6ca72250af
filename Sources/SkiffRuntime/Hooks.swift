import Glibc
import SkiffSys
import SkiffSpec

/// The hook running now, as its process group, for the stop handler below.
nonisolated(unsafe) private var runningHookGroup: pid_t = 0
nonisolated(unsafe) private var stopSignal: Int32 = 0

public enum HookRunner {
    /// Runs hooks of one kind in order with the state JSON on stdin; stops at the first failure.
    /// `cwdFd`: the directory the hooks run in (createContainer: the container's rootfs, as in runc).
    public static func run(_ kind: String, _ hooks: [Hook]?, state: OCIState, cwdFd: Int32 = -1) throws {
        guard let hooks, !hooks.isEmpty else { return }
        let stdin = try JSON.encode(state)
        for (i, h) in hooks.enumerated() { try runOne(kind, i, h, stdin: stdin, cwdFd: cwdFd) }
    }

    /// Runs every hook of one kind; a failure is a warning and the rest still run (runtime-spec
    /// lifecycle steps 9 and 13: poststart and poststop failures MUST only be logged).
    public static func runAll(_ kind: String, _ hooks: [Hook]?, state: OCIState, warn: (String) -> Void) {
        guard let hooks, !hooks.isEmpty, let stdin = try? JSON.encode(state) else { return }
        for (i, h) in hooks.enumerated() {
            do { try runOne(kind, i, h, stdin: stdin) } catch { warn("\(error)") }
        }
    }

    /// One hook, in a process group of its own. A hook without a timeout may run forever (as in
    /// runc), but when the runtime is told to stop (SIGTERM, SIGINT, SIGHUP, SIGQUIT) the group
    /// is killed and the failure unwinds like any other, so `create` still cleans up.
    static func runOne(_ kind: String, _ i: Int, _ h: Hook, stdin: [UInt8], cwdFd: Int32 = -1) throws {
        let stops = [SIGTERM, SIGINT, SIGHUP, SIGQUIT]
        var saved: [sigaction] = []
        for sig in stops {
            var act = sigaction()
            act.__sigaction_handler.sa_handler = { sig in
                stopSignal = sig
                if runningHookGroup > 0 { Glibc.kill(-runningHookGroup, SIGKILL) }
            }
            var old = sigaction()
            sigaction(sig, &act, &old)
            saved.append(old)
        }
        stopSignal = 0
        defer {
            runningHookGroup = 0
            for (sig, old) in zip(stops, saved) { var o = old; sigaction(sig, &o, nil) }
        }
        let r: SpawnResult
        do {
            r = try Spawn.run(
                path: h.path, args: h.args ?? [h.path], env: h.env ?? [], stdin: stdin, timeout: h.timeout,
                cwdFd: cwdFd, newProcessGroup: true
            ) { pid in
                runningHookGroup = pid
                if stopSignal != 0 { Glibc.kill(-pid, SIGKILL) }
            }
        } catch let e as SkiffError {
            throw e.wrapped("\(kind) hook #\(i)")
        }
        if stopSignal != 0 {
            throw SkiffError.msg("\(kind) hook #\(i) \(quote(h.path)): killed: the runtime received signal \(stopSignal)")
        }
        if r.timedOut {
            throw SkiffError.msg("\(kind) hook #\(i) \(quote(h.path)): ran past its timeout of \(h.timeout ?? 0)s and was killed")
        }
        if r.status != 0 {
            let out = r.outputText
            throw SkiffError.msg(
                "\(kind) hook #\(i) \(quote(h.path)): exited with status \(exitCode(fromWaitStatus: r.status))" + (out.isEmpty ? "" : ", output: \(out)"))
        }
    }
}

import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffCgroups
import SkiffSeccomp

public struct ExecOptions {
    public var process: Process
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFds = 0
    public var ignorePaused = false
    /// The process's stdin, stdout and stderr (a shim's pipes); nil = the caller's own stdio.
    public var stdio: [Int32]?
    /// A connected socket that receives the pty master (a shim's in-process console socket).
    public var consoleSocketFd: Int32?
    /// `exec --cgroup`: an existing sub-cgroup of the container's to run the process in.
    public var subCgroup: String?
    public init(process: Process) { self.process = process }
}

extension Runtime {

    /// Runs a new process inside a running container: joins its namespaces (user first) and its
    /// cgroup, applies the process's user, caps, rlimits and no_new_privs, then execs. Returns the
    /// process's exit code in the foreground, 0 once it started with `detach`.
    /// `makeOptions` gets the container's process config (the base for `exec` without `--process`,
    /// as in runc), so the stored config is decoded once.
    public func exec(id: String, makeOptions: (Process) throws -> ExecOptions) throws -> Int32 {
        let r = try store.load(id)
        let config = try store.execConfig(id)
        guard let template = config.process else { throw SkiffError.msg("container \(quote(id)) has no process config") }
        let options = try makeOptions(template)
        let (pid, master) = try launchExec(r, config: config, options: options)
        if options.detach { return 0 }
        return exitCode(fromWaitStatus: waitForeground(pid: pid, master: master))
    }

    /// Starts an exec'd process detached and returns its host pid (the shim's entry point).
    public func execDetached(id: String, options: ExecOptions) throws -> pid_t {
        var o = options
        o.detach = true
        return try launchExec(try store.load(id), config: try store.execConfig(id), options: o).pid
    }

    func launchExec(_ r: ContainerRecord, config: ExecConfig, options: ExecOptions) throws -> (pid: pid_t, master: Int32) {
        switch status(of: r) {
        case .stopped: throw SkiffError.msg("cannot exec in a stopped container")
        case .creating: throw SkiffError.msg("cannot exec in a container that is being created")
        case .paused where !options.ignorePaused:
            throw SkiffError.msg("cannot exec in a paused container", hint: "resume it first (`skiff exec --ignore-paused` runs it anyway)")
        default: break
        }
        let process = options.process
        try Validation.validateProcess(process)
        try LSM.check(process, mountLabel: nil)
        let terminal = process.terminal ?? false
        try Runtime.checkTerminal(
            terminal, consoleSocket: options.consoleSocket ?? options.consoleSocketFd.map { "fd \($0)" },
            detached: options.detach)
        try Runtime.checkPreservedFds(options.preserveFds)

        // The init's namespaces, user first and mount last (paths resolve before we switch root).
        var joins: [(UInt, String)] = []
        for ns in config.linux?.namespaces ?? [] {
            guard let kind = NamespaceKind(rawValue: ns.type), let flag = InitPlan.nsFlags[ns.type] else { continue }
            let path = "/proc/\(r.pid)/ns/\(kind.procName)"
            if kind == .user {
                joins.insert((flag, path), at: 0)
            } else if kind == .mount {
                joins.append((flag, path))
            } else {
                joins.insert((flag, path), at: joins.first?.0 == UInt(SKIFF_CLONE_NEWUSER) ? 1 : 0)
            }
        }

        var consoleFd: Int32 = -1
        var internalConsole: Int32 = -1
        if let sock = options.consoleSocket {
            consoleFd = try Sys.connectUnix(FS.absolute(sock))
        } else if let fd = options.consoleSocketFd {
            consoleFd = dup(fd)
        } else if terminal {
            let (a, b) = try Sys.socketpair(seqpacket: false)
            internalConsole = a
            consoleFd = b
        }
        defer { if consoleFd >= 0 { close(consoleFd) }; if internalConsole >= 0 { close(internalConsole) } }
        let cgroupDir = try execCgroup(r, sub: options.subCgroup)
        // Held, not named again: the process joins it from inside the container's namespaces.
        let cgroupFd = cgroupDir.map { Glibc.open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } ?? -1
        if let dir = cgroupDir, cgroupFd < 0 { throw SkiffError.sys("open cgroup", dir) }
        defer { if cgroupFd >= 0 { close(cgroupFd) } }
        let (parentEnd, childEnd) = try Sys.socketpair()
        defer { close(parentEnd) }
        signal(SIGPIPE, SIG_IGN)
        let env = process.env ?? []
        let preserved = options.preserveFds
        let stdio = options.stdio
        // The container's filter, SCMP_ACT_NOTIFY included: the exec'd process's notify fd goes
        // to the agent as the init's did.
        let filter = try config.linux?.seccomp.map { try SeccompFilter($0) }

        let s1 = fork()
        if s1 < 0 { close(childEnd); throw SkiffError.sys("fork") }
        if s1 == 0 {
            close(parentEnd)
            if let stdio, !Sys.installStdio(stdio) { _exit(1) }
            let hasMountNamespace = config.linux?.namespaces?.contains { $0.type == "mount" } ?? false
            ExecProcess.stageOne(
                ExecPlan(
                    joins: joins, cgroupFd: cgroupFd, cgroupDir: cgroupDir, syncFd: childEnd, consoleFd: consoleFd,
                    process: process, env: env, preserved: preserved, seccomp: filter,
                    chrootOf: hasMountNamespace ? nil : r.pid, initPid: r.pid, initStartTime: r.startTime))
        }
        close(childEnd)
        let sync = SyncSocket(fd: parentEnd)
        var pid: pid_t = 0
        do {
            switch try sync.receive() {
            case .pid(let p)?: pid = p
            case .error(let e)?: throw e
            case nil: throw SkiffError.msg("exec setup process exited early")
            case let m?: throw SkiffError.msg("unexpected message \(quote(m.encoded)) from the exec setup")
            }
        } catch {
            _ = Sys.wait(s1)
            throw error
        }
        _ = Sys.wait(s1)
        // Until EOF, which means the exec succeeded (the socket is close-on-exec): a seccomp
        // notify fd to hand to the agent, or an error.
        do {
            var agentWatch: SeccompAgentWatch?
            while true {
                // Once the process runs under a notify filter, its syscalls before execve may wait
                // on an agent that never answers: an error after the limit, not a hang.
                try agentWatch?.waitReadable(parentEnd, "exec \(quote(r.id))")
                guard let msg = try sync.receive() else { break }
                switch msg {
                case .seccompFd(let remote):
                    var st = ociState(r)
                    st.pid = pid
                    try SeccompAgent.handOff(remoteFd: remote, of: pid, seccomp: config.linux!.seccomp!, state: st)
                    try sync.send(.seccompDone)
                    agentWatch = SeccompAgentWatch(pid: pid)
                case .error(let e): throw e
                default: throw SkiffError.msg("unexpected message \(quote(msg.encoded)) from the exec'd process")
                }
            }
        } catch {
            Glibc.kill(pid, SIGKILL)
            _ = Sys.wait(pid)
            throw error
        }
        Logger.shared.debug("exec \(quote(r.id)): process pid \(pid) started")
        var master: Int32 = -1
        if internalConsole >= 0 {
            close(consoleFd); consoleFd = -1
            master = try Sys.recvFd(internalConsole).fd
        }
        if let pf = options.pidFile { try writePidFile(FS.absolute(pf), pid: pid) }
        return (pid, master)
    }
}

extension Runtime {
    /// The cgroup an exec'd process joins: the container's, or with `exec --cgroup [CTRL:]SUB` an
    /// existing cgroup below it (cgroup v2 has one tree, so a controller prefix names the same).
    func execCgroup(_ r: ContainerRecord, sub: String?) throws -> String? {
        guard let sub else { return r.cgroupPath }
        guard let dir = r.cgroupPath else { throw SkiffError.msg("exec --cgroup \(quote(sub)): the container has no cgroup") }
        let parts = sub.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.count == 2 ? parts[1] : parts[0])
        let full = FS.clean(dir + "/" + path)
        guard !path.isEmpty, full.hasPrefix(dir + "/") else { throw SkiffError.msg("exec --cgroup: \(path) is not a sub cgroup path") }
        guard FS.isDirectory(full) else { throw SkiffError("exec --cgroup", full, errno: ENOENT, hint: "the sub-cgroup must exist") }
        return full
    }
}

/// What an exec'd process needs, computed before the fork.
struct ExecPlan {
    var joins: [(UInt, String)]
    var cgroupFd: Int32
    var cgroupDir: String?
    var syncFd: Int32
    var consoleFd: Int32
    var process: Process
    var env: [String]
    var preserved: Int
    var seccomp: SeccompFilter?
    /// A container without a mount namespace of its own is a chroot of the runtime's: the
    /// process enters the init's root.
    var chrootOf: pid_t?
    /// The init whose /proc/PID/ns the joins name, and its start time (a pid is reused).
    var initPid: pid_t
    var initStartTime: UInt64?
}

enum ExecProcess {
    static func stageOne(_ plan: ExecPlan) -> Never {
        // Not dumpable from here to execve (which resets it): the container's processes can see
        // this one in their pid namespace, and /proc/PID/exe would hand them the host's skiff
        // binary to overwrite (CVE-2019-5736's way in). The child inherits the setting.
        _ = skiff_prctl(SKIFF_PR_SET_DUMPABLE, 0, 0, 0, 0)
        // Whatever the caller holds (a shim's sockets, bundles, cgroup directories) stays here.
        Sys.closeFds(from: 3 + Int32(plan.preserved), except: [plan.syncFd, plan.consoleFd, plan.cgroupFd])
        do {
            // For the fallback below: opened before we join the container's cgroup namespace.
            let procs = try plan.cgroupDir.map { try Cgroup2.at($0).openProcs(directoryFd: plan.cgroupFd) }
            try Sys.joinNamespaces(plan.joins) { Proc.isAlive(plan.initPid, startTime: plan.initStartTime) }
            if let initPid = plan.chrootOf {
                if chdir("/proc/\(initPid)/root") != 0 || chroot(".") != 0 { throw SkiffError.sys("chroot", "/proc/\(initPid)/root") }
            }
            var pid = plan.cgroupFd >= 0 ? skiff_clone3_fork(UInt64(SKIFF_CLONE_PARENT), plan.cgroupFd) : -1
            if pid < 0 {
                if let dir = plan.cgroupDir, let procs { try Cgroup2.at(dir).join(pid: 0, procsFd: procs) }
                pid = skiff_clone_fork(UInt(SKIFF_CLONE_PARENT))
            }
            if pid < 0 { throw SkiffError.sys("clone", "exec process") }
            if pid == 0 {
                if let procs { close(procs) }
                child(plan)
            }
            try SyncSocket(fd: plan.syncFd).send(.pid(pid))
            _exit(0)
        } catch {
            SyncSocket(fd: plan.syncFd).report(error)
            _exit(1)
        }
    }

    static func child(_ plan: ExecPlan) -> Never {
        let sync = SyncSocket(fd: plan.syncFd)
        let process = plan.process
        // The host's cgroup directory: we are in it already, and nothing the container can name
        // (its /dev/ptmx, its cwd) may lead through /proc/self/fd to it.
        if plan.cgroupFd >= 0 { close(plan.cgroupFd) }
        do {
            if process.terminal == true { try InitProcess.setupConsole(socket: plan.consoleFd, process, bindConsole: false) }
            let (path, args, env) = try InitProcess.prepareProcess(
                process, env: plan.env, preservedFds: plan.preserved, keepFds: [plan.syncFd],
                seccomp: plan.seccomp, sync: sync)
            _ = skiff_close_range(UInt32(3 + plan.preserved), UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
            let argv = CStringArray(args)
            let envp = CStringArray(env)
            try InitProcess.loadLateSeccomp(plan.seccomp, process, sync: sync)
            resetSignalsForExec()
            execve(path, argv.pointers, envp.pointers)
            throw SkiffError.sys("exec", args[0])
        } catch {
            sync.report(error)
        }
        _exit(127)
    }
}

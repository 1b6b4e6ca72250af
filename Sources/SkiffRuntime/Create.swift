import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffState
import SkiffCgroups
import SkiffSeccomp

/// Options the CLI passes to create/run.
public struct CreateOptions {
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    /// A connected console socket fd (foreground `run` receives the pty master itself).
    public var consoleSocketFd: Int32?
    public var noPivot = false
    public var preserveFds = 0
    public var systemdCgroup = false
    /// `run` without -d: the caller stays attached (terminal proxied by the runtime itself).
    public var foreground = false
    /// The container's stdin, stdout and stderr (a shim's pipes); nil = the caller's own stdio.
    public var stdio: [Int32]?
    /// The bundle's config as `run` already read and validated it (read once per command).
    var loaded: LoadedSpec?
    /// `run` starts the container itself: its start barrier is an anonymous pipe whose read end
    /// `run` keeps, so no exec.fifo is made, opened and removed (see StartBarrier).
    var pipeBarrier = false
    public init(bundle: String) { self.bundle = bundle }
}

/// A validated config and the bytes it was decoded from: those bytes are what the state
/// directory keeps, so `create` does not encode the spec back (Codable encoding is a large
/// share of the code a command would otherwise run).
struct LoadedSpec {
    var spec: Spec
    var bytes: [UInt8]
}

/// Parent side of `create`: validate, make the state dir and cgroup, spawn the init through an
/// intermediate child (which joins namespaces by path), write id maps, run the runtime-namespace
/// hooks, and return once the init is blocked on the start barrier. Any failure undoes it all.
extension Runtime {
    /// Creates the container. Returns the init's host pid.
    @discardableResult
    public func create(id: String, options: CreateOptions) throws -> pid_t {
        try createContainer(id: id, options: options).pid
    }

    /// What `create` made: the init, the record it saved, and with `pipeBarrier` the read end of
    /// the start barrier and the container's lock, still held (the caller's to close): nothing
    /// (a `pause`, a `delete`) gets in between create and the start that follows.
    struct Created {
        var pid: pid_t
        var record: ContainerRecord
        var barrier: Int32
        var lock: Int32

        func closeFds() {
            if barrier >= 0 { close(barrier) }
            if lock >= 0 { close(lock) }
        }
    }

    func createContainer(id: String, options: CreateOptions) throws -> Created {
        try StateStore.validateID(id)
        let bundle = FS.absolute(options.bundle)
        let loaded = try options.loaded ?? Runtime.load(bundle: bundle)
        let spec = loaded.spec
        guard let process = spec.process else { throw SkiffError.msg("config: process is required to create a container") }
        try LSM.check(process, mountLabel: spec.linux?.mountLabel)
        try Runtime.checkTerminal(
            process.terminal ?? false, consoleSocket: options.consoleSocket ?? options.consoleSocketFd.map { "fd \($0)" },
            detached: !options.foreground)
        // Preserved fds must exist before anything is created.
        var preserved = options.preserveFds
        var plan = try InitPlan(id: id, spec: spec, bundle: bundle)
        // Socket activation (sd_listen_fds): the fds are ours only when LISTEN_PID names this
        // process. A LISTEN_FDS inherited from some activated ancestor would otherwise hand the
        // container whatever fds 3.. happen to be, host directories included.
        if let lf = getenv("LISTEN_FDS").map({ String(cString: $0) }), let n = Int(lf), n > 0,
            let lp = getenv("LISTEN_PID").map({ String(cString: $0) }), pid_t(lp) == getpid()
        {
            preserved += n
            plan.env = plan.env.filter { !$0.hasPrefix("LISTEN_FDS=") && !$0.hasPrefix("LISTEN_PID=") } + ["LISTEN_FDS=\(n)", "LISTEN_PID=1"]
        }
        try Runtime.checkPreservedFds(preserved)
        plan.preservedFds = preserved
        plan.noPivot = options.noPivot
        plan.stdio = options.stdio
        if let sc = spec.linux?.seccomp { plan.seccomp = try withContext("seccomp") { try SeccompFilter(sc) } }

        try store.createDir(id)
        Logger.shared.debug("create \(quote(id)): config of \(bundle) validated, rootfs \(plan.rootfs)")
        var cleanup = CreateCleanup(store: store, id: id)
        defer { cleanup.run() }
        let lockFd = try store.lock(id)
        var lockHandedOver = false
        defer { if !lockHandedOver { close(lockFd) } }
        plan.lockFd = lockFd

        var record = ContainerRecord(
            id: id, ociVersion: spec.ociVersion, bundle: bundle, rootfs: plan.rootfs, pid: 0,
            startTime: 0, created: rfc3339Now(), annotations: spec.annotations, cgroupPath: nil,
            poststart: spec.hooks?.poststart, poststop: spec.hooks?.poststop, started: false,
            ownPidNamespace: plan.createsPidNamespace)
        record.useSystemdCgroup = systemdCgroup ? true : nil

        // A record from the cgroup on, so that a create killed midway (kill -9, a crash, a hook
        // that hangs) leaves a container `delete` can take down: its cgroup, later its init.
        record.creatorPid = getpid()
        record.creatorStartTime = Proc.stat(getpid())?.startTime
        if !options.pipeBarrier {
            if mkfifo(store.fifo(id), 0o622) != 0 { throw SkiffError.sys("mkfifo", store.fifo(id)) }
            chmod(store.fifo(id), 0o622)
        }

        // cgroup
        let rootless = self.rootless ?? Rootless.decide("auto")
        // With the systemd driver: the process that holds the new scope until the init is in it.
        var scopeHolder: ScopeHolder?
        defer { scopeHolder?.release() }
        if let mp = Cgroup2.hostMountpoint() {
            let own = Cgroup2.ownPath(procSelfCgroup: (try? FS.readString("/proc/self/cgroup")) ?? "")
            let path = try Cgroup2.resolve(cgroupsPath: spec.linux?.cgroupsPath, id: id, systemd: systemdCgroup, own: own)
            let cg = Cgroup2(mountpoint: mp, path: path)
            if systemdCgroup && !rootless {
                if Systemd.isRunning {
                    record.systemdUnit = try startScope(id: id, spec: spec, cleanup: &cleanup, holder: &scopeHolder)
                } else {
                    Logger.shared.warn("systemd is not running: \(cg.directory) is made as systemd would name it, without a unit (cgroupfs)")
                }
            }
            if let top = try createCgroup(cg, spec: spec, rootless: rootless, madeBySystemd: record.systemdUnit != nil) {
                cleanup.cgroup = (cg, top.created)
                plan.cgroup = cg
                plan.cgroupFd = Glibc.open(cg.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                // Held, not named again: the init joins it (clone3, or by this fd) after it may
                // have joined namespaces given by path.
                if plan.cgroupFd < 0 { throw SkiffError.sys("open cgroup", cg.directory) }
                record.cgroupPath = cg.directory
                Logger.shared.debug("create \(quote(id)): cgroup \(cg.directory)\(top.created == nil ? " (existing)" : "")")
                record.cgroupCreatedTop = top.created
                try store.saveCreating(record)  // see creatorPid above: from here on there is a cgroup to remove
                if let res = spec.linux?.resources {
                    let skip = skipUnavailableCgroups || spec.annotations?["org.skiff.cgroups.skip-unavailable"] == "true"
                    try cg.apply(res, skipUnavailable: skip) { Logger.shared.warn($0) }
                }
                // Always a device program, as runc: without linux.resources.devices only the default
                // nodes are usable (a node in linux.devices is created, not allowed). Not rootless:
                // loading it needs CAP_SYS_ADMIN on the host, and a user namespace makes no nodes.
                if !rootless {
                    let deviceRules = spec.linux?.resources?.devices ?? []
                    try DeviceFilter.attach(
                        try DeviceFilter.rules(resources: deviceRules, devices: spec.linux?.devices ?? []) { Logger.shared.warn($0) },
                        cgroupDir: cg.directory)
                }
            }
        } else if spec.linux?.cgroupsPath != nil && !rootless {
            throw SkiffError.msg("no cgroup2 hierarchy is mounted", hint: "mount cgroup2 or run on a cgroup v2 host")
        }

        if record.cgroupPath == nil { try store.saveCreating(record) }

        if let sock = options.consoleSocket {
            plan.consoleSocketFd = try Sys.connectUnix(FS.absolute(sock))
        } else if let fd = options.consoleSocketFd {
            plan.consoleSocketFd = dup(fd)
        }
        defer { if plan.consoleSocketFd >= 0 { close(plan.consoleSocketFd) } }
        defer { if plan.cgroupFd >= 0 { close(plan.cgroupFd) } }
        // Both ends of exec.fifo in one fd (O_RDWR never blocks on a FIFO): the init's start
        // barrier needs no path, no /proc and no directory of the host (see StartBarrier).
        var barrier: Int32 = -1
        if options.pipeBarrier {
            let p = try Sys.pipe()
            plan.fifoFd = p.write
            barrier = p.read
        } else {
            plan.fifoFd = try FS.open(store.fifo(id), O_RDWR | O_CLOEXEC)
        }
        defer { close(plan.fifoFd) }
        var barrierHandedOver = false
        defer { if barrier >= 0 && !barrierHandedOver { close(barrier) } }
        let (parentEnd, childEnd) = try Sys.socketpair()
        defer { close(parentEnd) }
        plan.syncFd = childEnd
        let (pidParent, pidChild) = try Sys.socketpair()
        defer { close(pidParent) }
        plan.pidFd = pidChild

        // The hooks and everything we fork must not die of SIGPIPE.
        signal(SIGPIPE, SIG_IGN)

        var initPid: pid_t = -1
        if InitProcess.canCloneDirectly(plan) {
            initPid = pid_t(skiff_clone3_fork(UInt64(plan.initCloneFlags), plan.cgroupFd))
            if initPid == 0 {
                close(parentEnd)
                close(pidParent)
                InitProcess.direct(plan)
            }
            // Refused (an old kernel, a seccomp'd caller): stage one below migrates and clones.
        }
        if initPid < 0 {
            // Stage 1: an intermediate child joins the cgroup and path namespaces, then clones the
            // init with CLONE_PARENT so the init is our child.
            let s1 = fork()
            if s1 < 0 { close(childEnd); close(pidChild); throw SkiffError.sys("fork") }
            if s1 == 0 {
                close(parentEnd)
                close(pidParent)
                InitProcess.stageOne(plan)
            }
            close(childEnd)
            close(pidChild)
            do {
                initPid = try receivePid(pidParent, stageOne: s1)
            } catch {
                _ = Sys.wait(s1)
                throw error
            }
            _ = Sys.wait(s1)
        } else {
            close(childEnd)
            close(pidChild)
        }
        cleanup.initPid = initPid
        scopeHolder?.release()  // the init holds the scope now
        Logger.shared.debug("create \(quote(id)): init is pid \(initPid) (\(nsFlagNames(plan.cloneFlags)) namespaces)")
        record.pid = initPid
        record.startTime = Proc.stat(initPid)?.startTime ?? 0
        // Without a cgroup (no cgroup2 mounted), the pid is the only handle on a half-created init.
        if record.cgroupPath == nil { try store.saveCreating(record) }

        let sync = SyncSocket(fd: parentEnd)
        if let devs = spec.linux?.netDevices, !devs.isEmpty {
            cleanup.netDevices = [:]
            record.netDevices = try NetDevices.moveIn(devs, initPid: initPid, store: store, id: id) { cleanup.netDevices = $0 }
            try store.saveCreating(record)  // a create killed from here on still gets its devices back at delete
        }
        if plan.newUserNamespace {
            try writeIDMaps(pid: initPid, linux: spec.linux!)
            try sync.send(.mapped)
        }

        // Conversation with the init until it reports ready (see Sync.swift).
        let creating = OCIState(
            ociVersion: spec.ociVersion, id: id, status: "creating", pid: initPid, bundle: bundle,
            annotations: spec.annotations)
        var agentWatch: SeccompAgentWatch?
        loop: while true {
            // Once the init runs under a notify filter, its own syscalls may wait on the agent.
            try agentWatch?.waitReadable(parentEnd, "create \(quote(id))")
            guard let msg = try sync.receive() else { throw initDied(initPid) }
            switch msg {
            case .ready:
                Logger.shared.debug("create \(quote(id)): init ready, waiting on exec.fifo")
                break loop
            case .runHooks:
                try HookRunner.run("prestart", spec.hooks?.prestart, state: creating)
                try HookRunner.run("createRuntime", spec.hooks?.createRuntime, state: creating)
                try sync.send(.hooksDone)
            case .seccompFd(let remote):
                try SeccompAgent.handOff(remoteFd: remote, of: initPid, seccomp: spec.linux!.seccomp!, state: creating)
                try sync.send(.seccompDone)
                agentWatch = SeccompAgentWatch(pid: initPid)
            case .error(let e): throw e
            default: throw SkiffError.msg("unexpected message \(quote(msg.encoded)) from the container's init")
            }
        }

        // exec reads the config from here: later edits of the bundle's config.json have no effect.
        // Written once into the new directory before state.json says the container exists, so
        // no reader can see it half written: no temporary file and rename.
        try FS.writeNewFile(store.dir(id) + "/config.json", loaded.bytes)
        record.creatorPid = nil
        record.creatorStartTime = nil
        try store.saveCreated(record)
        if let pf = options.pidFile { try writePidFile(FS.absolute(pf), pid: initPid) }
        cleanup.disarm()
        barrierHandedOver = true
        lockHandedOver = options.pipeBarrier
        return Created(pid: initPid, record: record, barrier: barrier, lock: options.pipeBarrier ? lockFd : -1)
    }

    /// runc's rules: a tty needs a console socket when the runtime detaches, and a console socket
    /// needs a tty.
    static func checkTerminal(_ terminal: Bool, consoleSocket: String?, detached: Bool) throws {
        if terminal && consoleSocket == nil && detached {
            throw SkiffError.msg("cannot allocate tty if skiff will detach without setting console socket")
        }
        if !terminal && consoleSocket != nil {
            throw SkiffError.msg("cannot use console socket if skiff will not detach or allocate tty")
        }
    }

    /// fds 3..<3+count must be open in the caller.
    static func checkPreservedFds(_ count: Int) throws {
        for fd in 3..<(3 + count) where skiff_fcntl_getfd(Int32(fd)) < 0 {
            throw SkiffError("unable to stat preserved-fd", "\(fd - 3) (fd \(fd))", errno: EBADF)
        }
    }

    func receivePid(_ fd: Int32, stageOne: pid_t) throws -> pid_t {
        switch try SyncSocket(fd: fd).receive() {
        case .pid(let p)?: return p
        case .error(let e)?: throw e
        case nil:
            let st = Sys.wait(stageOne).status
            throw SkiffError.msg("container setup process exited early (status \(exitCode(fromWaitStatus: st)))")
        case let m?: throw SkiffError.msg("unexpected message \(quote(m.encoded)) from the container's setup")
        }
    }

    func initDied(_ pid: pid_t) -> SkiffError {
        let (r, st) = Sys.wait(pid, options: WNOHANG)
        if r == pid { return SkiffError.msg("container init exited during setup (status \(exitCode(fromWaitStatus: st)))") }
        return SkiffError.msg("container init closed its sync socket during setup")
    }

    /// Makes the container's cgroup; nil when rootless and nothing was delegated: runc goes on without a cgroup then, unless
    /// the config asks for limits.
    func createCgroup(_ cg: Cgroup2, spec: Spec, rootless: Bool, madeBySystemd: Bool = false) throws -> CreatedCgroup? {
        // systemd made the scope's directory for us: ours to empty and remove like one we made.
        if madeBySystemd {
            guard cg.exists else { throw SkiffError("create cgroup", cg.directory, errno: ENOENT, hint: "systemd started the scope elsewhere") }
            return CreatedCgroup(created: cg.directory)
        }
        let top: String?
        do { top = try cg.create() } catch let e as SkiffError where rootless && [EACCES, EPERM, EROFS].contains(e.errno ?? 0) {
            guard !Rootless.asksForResources(spec.linux?.resources, available: cg.availableControllers()) else {
                throw SkiffError(
                    "create cgroup", cg.directory, errno: e.errno ?? EACCES,
                    hint:
                        "rootless: limits need a cgroup delegated to you (a systemd user slice with Delegate=yes, or a cgroup2 directory chowned to you and named in linux.cgroupsPath)"
                )
            }
            Logger.shared.warn("rootless: the container has no cgroup (\(cg.directory) is not writable); pause, resume and stats need a delegated one")
            return nil
        }
        if top == nil {
            // An existing cgroup: shared with processes already there (runc warns and goes
            // on), but a frozen one would freeze the init we clone into it: create would hang.
            // Counted over the whole subtree, as runc counts: processes in a child cgroup are
            // reached by kill --all, the device program and delete just the same.
            if let n = try? cg.procsInSubtree().count, n > 0 { Logger.shared.warn("container's cgroup is not empty: \(n) process(es) found") }
            if cg.isFrozen() {
                throw SkiffError("create", cg.directory, detail: "the container's cgroup is frozen", hint: "thaw it first (cgroup.freeze)")
            }
        }
        return CreatedCgroup(created: top)
    }

    /// Asks systemd for the container's scope (runc's systemd manager): a transient unit whose
    /// first process is a holder we fork (a scope cannot start empty, and the runtime itself, or
    /// the shim it runs in, must not enter the container's cgroup). The init is then cloned
    /// into the scope's directory and the holder lets go.
    func startScope(id: String, spec: Spec, cleanup: inout CreateCleanup, holder: inout ScopeHolder?) throws -> String {
        let (unit, slice) = try Systemd.unit(cgroupsPath: spec.linux?.cgroupsPath, id: id)
        let limits = try Systemd.resourceProperties(spec.linux?.resources)
        let h = try ScopeHolder.start()
        holder = h
        try Systemd.startScope(unit, slice: slice, pid: h.pid, description: "skiff container \(id)", properties: limits) { cleanup.systemdUnit = unit }
        Logger.shared.debug("create \(quote(id)): systemd scope \(unit) in \(slice)")
        return unit
    }

    func writeIDMaps(pid: pid_t, linux: Linux) throws {
        try Rootless.writeIDMaps(pid: pid, uid: linux.uidMappings ?? [], gid: linux.gidMappings ?? [])
    }

    /// runc's format: decimal pid, no newline, atomic rename.
    func writePidFile(_ path: String, pid: pid_t) throws {
        let tmp = FS.dirname(path) + "/." + FS.basename(path)
        unlink(tmp)
        let fd = try FS.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_SYNC, mode: 0o666)
        defer { close(fd) }
        try FS.writeAll(fd: fd, "\(pid)")
        if rename(tmp, path) != 0 { throw SkiffError.sys("rename", path) }
    }
}

/// The cgroup create made: `created` is the topmost directory it had to make (nil: it existed).
struct CreatedCgroup { let created: String? }

/// A child that only waits: the first process of a systemd scope until the init joins it.
/// Killed then; it dies with us too (PR_SET_PDEATHSIG), so a create killed midway leaves no holder.
final class ScopeHolder {
    var pid: pid_t

    init(pid: pid_t) { self.pid = pid }

    static func start() throws -> ScopeHolder {
        let parent = getpid()
        let pid = fork()
        if pid < 0 { throw SkiffError.sys("fork", "scope holder") }
        if pid == 0 {
            // Nothing of ours stays open in it (in the shim: other containers' pipes, ttrpc).
            _ = skiff_close_range(0, UInt32.max, 0)
            _ = skiff_prctl(SKIFF_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
            if getppid() != parent { _exit(0) }
            while true { pause() }
        }
        return ScopeHolder(pid: pid)
    }

    func release() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        _ = Sys.wait(pid)
        pid = 0
    }
}

/// Undoes a half-done create: kills the init, removes the cgroup and the state dir.
struct CreateCleanup {
    let store: StateStore
    let id: String
    var initPid: pid_t = 0
    var cgroup: (Cgroup2, String?)?
    /// A systemd scope started for the container, stopped on failure.
    var systemdUnit: String?
    /// linux.netDevices moved in so far (host name → container name), moved back on failure.
    var netDevices: [String: String]?
    var armed = true

    init(store: StateStore, id: String) { self.store = store; self.id = id }

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        if let moved = netDevices { NetDevices.moveOut(moved, store: store, id: id) }
        if initPid > 0 {
            kill(initPid, SIGKILL)
            _ = Sys.wait(initPid)
        }
        // A cgroup that was there before is not ours to empty or remove.
        if let (cg, top) = cgroup, top != nil { try? cg.remove(createdTop: top, killRemaining: true) }
        // After the kill, as delete does (a stop would SIGTERM what is left and wait).
        if let unit = systemdUnit { try? Systemd.stopUnit(unit) }
        try? store.remove(id)
    }
}

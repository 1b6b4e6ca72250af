import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffRootfs
import SkiffCaps
import SkiffSeccomp

/// The child side of create. Runs synchronously in a single-threaded copy of the runtime, from
/// the intermediate child (stage one) to the init's execve. Every failure is sent back to the
/// parent over the sync socket and printed by the CLI.
enum InitProcess {
    /// Stage one: join the cgroup (so a new cgroup namespace is rooted there) and the namespaces
    /// given by path, create the time namespace, then clone the init as our parent's child.
    /// What every child of the runtime does first: let go of the state lock, blank the copied
    /// environment, take its stdio, and hold nothing of the caller's but stdio and the preserved
    /// fds (like runc's re-exec'd init: a caller waiting for EOF on some pipe must not wait for
    /// our container).
    static func prelude(_ plan: InitPlan) {
        close(plan.lockFd)
        Proc.scrubEnvironmentAndCommandLine()
        if let stdio = plan.stdio, !Sys.installStdio(stdio) { _exit(1) }
        let keep: [Int32] = [plan.syncFd, plan.pidFd, plan.fifoFd, plan.consoleSocketFd, plan.cgroupFd]
        for name in (try? FS.listDirectory("/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd >= 3 + Int32(plan.preservedFds), !keep.contains(fd) { close(fd) }
        }
    }

    /// Whether the init can be cloned by the runtime itself, straight into its cgroup: nothing
    /// to join by path, no time namespace to unshare first, no user namespace (whose host paths
    /// stage one hands over). Saves a fork and a wait per create.
    static func canCloneDirectly(_ plan: InitPlan) -> Bool {
        plan.joins.isEmpty && !plan.newTimeNamespace && !plan.newUserNamespace && plan.cgroupFd >= 0
    }

    /// The init cloned by the runtime itself (see canCloneDirectly).
    static func direct(_ plan: InitPlan) -> Never {
        prelude(plan)
        close(plan.pidFd)
        runInit(plan)
    }

    static func stageOne(_ plan: InitPlan) -> Never {
        var plan = plan
        prelude(plan)
        let report = SyncSocket(fd: plan.pidFd)
        // Joining namespaces of others: processes already in them must not reach into us through
        // /proc/PID (fds, memory) before execve resets this (runc does the same).
        if !plan.joins.isEmpty { _ = skiff_prctl(SKIFF_PR_SET_DUMPABLE, 0, 0, 0, 0) }
        do {
            // A sysctl goes to the namespace it belongs to: never to one that is the host's.
            var notHost: [UInt: String] = [:]
            let flags = ["ipc": UInt(SKIFF_CLONE_NEWIPC), "network": UInt(SKIFF_CLONE_NEWNET), "uts": UInt(SKIFF_CLONE_NEWUTS)]
            for key in (plan.spec.linux?.sysctl ?? [:]).keys.sorted() {
                if let ns = Validation.sysctlNamespace(key), let f = flags[ns], notHost[f] == nil { notHost[f] = "sysctl \(quote(key))" }
            }
            try Sys.joinNamespaces(plan.joins, notHost: notHost)
            if plan.newTimeNamespace {
                try Sys.unshare(UInt(SKIFF_CLONE_NEWTIME))
                var text = ""
                for (clock, off) in (plan.spec.linux?.timeOffsets ?? [:]).sorted(by: { $0.key < $1.key }) {
                    text += "\(clock) \(off.secs ?? 0) \(off.nanosecs ?? 0)\n"
                }
                if !text.isEmpty { try FS.writeFile("/proc/self/timens_offsets", text, flags: O_WRONLY) }
            }
            var hostPathsEnd: Int32 = -1
            // Not for an unprivileged caller: it cannot join the init's mount namespace, and the
            // init (its own uid on the host) reaches what the caller reaches.
            if plan.newUserNamespace && geteuid() == 0 { (hostPathsEnd, plan.hostPathsFd) = try Sys.socketpair() }
            var pid = plan.cgroupFd >= 0 ? skiff_clone3_fork(UInt64(plan.initCloneFlags | UInt(SKIFF_CLONE_PARENT)), plan.cgroupFd) : -1
            if pid < 0 {
                // No clone3/CLONE_INTO_CGROUP (old kernel, seccomp'd caller): migrate, then clone.
                // Through the directory's fd: namespaces joined by path (the config's) are ours now.
                if let cg = plan.cgroup { try plan.cgroupFd >= 0 ? cg.join(pid: 0, directoryFd: plan.cgroupFd) : cg.join(pid: 0) }
                pid = skiff_clone_fork(plan.cloneFlags | UInt(SKIFF_CLONE_PARENT))
                plan.unshareCgroupLater = false
            }
            if pid < 0 {
                throw SkiffError.sys(
                    "clone", nsFlagNames(plan.cloneFlags),
                    hint: errno == EINVAL ? "a namespace may not be available in this context" : nil)
            }
            if pid == 0 {
                close(plan.pidFd)
                if hostPathsEnd >= 0 { close(hostPathsEnd) }
                runInit(plan)
            }
            if hostPathsEnd >= 0 {
                close(plan.hostPathsFd)
                do { try HostPaths.send(to: hostPathsEnd, initPid: pid, plan: plan) } catch {
                    Glibc.kill(pid, SIGKILL)
                    throw error
                }
            }
            try report.send(.pid(pid))
            _exit(0)
        } catch {
            report.report(error)
            _exit(1)
        }
    }

    static func runInit(_ plan: InitPlan) -> Never {
        do { try setup(plan) } catch { SyncSocket(fd: plan.syncFd).report(error) }
        _exit(1)
    }

    static func setup(_ plan: InitPlan) throws -> Never {
        let spec = plan.spec
        let process = spec.process!
        let sync = SyncSocket(fd: plan.syncFd)
        // The cgroup directory was for clone3: no directory of the host stays open in the init.
        Sys.closeFds(
            from: 3 + Int32(plan.preservedFds),
            except: [plan.syncFd, plan.fifoFd, plan.consoleSocketFd, plan.hostPathsFd])
        // Die with the runtime while it still owns us; cleared before reporting ready.
        _ = skiff_prctl(SKIFF_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)

        if plan.newUserNamespace {
            try sync.expect(.mapped)
            if skiff_setresgid(0, 0, 0) != 0 { throw SkiffError.sys("setresgid", "0", hint: "is gid 0 mapped in linux.gidMappings?") }
            if skiff_setresuid(0, 0, 0) != 0 { throw SkiffError.sys("setresuid", "0", hint: "is uid 0 mapped in linux.uidMappings?") }
            _ = skiff_prctl(SKIFF_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
        }
        if plan.unshareCgroupLater && plan.cloneFlags & UInt(SKIFF_CLONE_NEWCGROUP) != 0 {
            // Born into the cgroup by clone3: the cgroup namespace is rooted there only if made now.
            try Sys.unshare(UInt(SKIFF_CLONE_NEWCGROUP))
        }
        if plan.cloneFlags & UInt(SKIFF_CLONE_NEWNET) != 0 { try NetDevices.loopbackUp() }
        if plan.cloneFlags & UInt(SKIFF_CLONE_NEWUTS) != 0 {
            if let h = spec.hostname, !h.isEmpty, sethostname(h, h.utf8.count) != 0 { throw SkiffError.sys("sethostname", h) }
            if let d = spec.domainname, !d.isEmpty, setdomainname(d, d.utf8.count) != 0 { throw SkiffError.sys("setdomainname", d) }
        }

        var rootfs = Rootfs(
            rootfs: plan.rootfs, spec: spec, inUserNamespace: plan.newUserNamespace || plan.joins.contains { $0.0 == UInt(SKIFF_CLONE_NEWUSER) },
            ownCgroupNamespace: plan.hasCgroupNamespace, hostCgroupDir: plan.cgroup?.directory)
        if plan.hostPathsFd >= 0 { rootfs.opened = try HostPaths.receive(from: plan.hostPathsFd, spec: spec) }
        if plan.hasMountNamespace { try rootfs.prepare() }
        // The host's rootfs and bind sources: nothing after the mounts may reach them.
        if let o = rootfs.opened {
            close(o.rootfs)
            o.sources.values.forEach { close($0) }
            rootfs.opened = nil
        }

        if plan.hasCreateHooks {
            try sync.send(.runHooks)
            try sync.expect(.hooksDone)
        }
        let inside = OCIState(
            ociVersion: spec.ociVersion, id: plan.id, status: "creating", pid: getpid(),
            bundle: plan.bundle, annotations: spec.annotations)
        try HookRunner.run("createContainer", spec.hooks?.createContainer, state: inside, cwdFd: rootfs.rootFd)

        if plan.hasMountNamespace {
            try rootfs.pivot(noPivot: plan.noPivot)
        } else {
            // The runtime's mount namespace is inherited: only a chroot into the rootfs, as runc.
            if chroot(plan.rootfs) != 0 { throw SkiffError.sys("chroot", plan.rootfs) }
            if chdir("/") != 0 { throw SkiffError.sys("chdir", "/") }
        }
        // runc creates a missing cwd, inside the root and before it may become read-only.
        try WorkingDirectory.create(process.cwd)

        if process.terminal == true { try setupConsole(socket: plan.consoleSocketFd, process, bindConsole: plan.hasMountNamespace) }
        // Sysctls go in before readonlyPaths make /proc/sys read-only (runc's order).
        for (key, value) in (spec.linux?.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            try withContext("sysctl \(key)") {
                try FS.writeFile("/proc/sys/" + key.replacing(".", with: "/"), value, flags: O_WRONLY)
            }
        }
        if plan.hasMountNamespace { try rootfs.finalize() }
        // Filled before the filter is loaded: fcntl and the padding writes are not the
        // container's to trap.
        try StartBarrier.fill(plan.fifoFd)

        let (path, args, env) = try prepareProcess(
            process, env: plan.env, preservedFds: plan.preservedFds,
            keepFds: [plan.syncFd, plan.fifoFd], seccomp: plan.seccomp, sync: sync)

        // Nothing but stdio and the preserved fds reaches the container process.
        _ = skiff_close_range(UInt32(3 + plan.preservedFds), UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
        let argv = CStringArray(args)
        let envp = CStringArray(env)

        _ = skiff_prctl(SKIFF_PR_SET_PDEATHSIG, 0, 0, 0, 0)
        // From here until execve (which resets it) nothing in the container may reach into us
        // through /proc/1 (fds, memory): `skiff exec` into a created container is allowed.
        _ = skiff_prctl(SKIFF_PR_SET_DUMPABLE, 0, 0, 0, 0)
        try loadLateSeccomp(plan.seccomp, process, sync: sync)
        try sync.send(.ready)

        // The start barrier: blocks until `skiff start` reads the FIFO.
        let fifo = plan.fifoFd
        if !StartBarrier.wait(fifo) { _exit(1) }
        do {
            let st = OCIState(
                ociVersion: spec.ociVersion, id: plan.id, status: "created", pid: getpid(),
                bundle: plan.bundle, annotations: spec.annotations)
            // Under the container's seccomp filter, as in runc.
            try HookRunner.run("startContainer", spec.hooks?.startContainer, state: st)
        } catch let e as SkiffError {
            try? FS.writeAll(fd: fifo, "E" + ErrorCodec.encode(e))
            _exit(1)
        }
        try? FS.writeAll(fd: fifo, "0")
        resetSignalsForExec()
        execve(path, argv.pointers, envp.pointers)
        let e = SkiffError.sys("exec", args[0])
        try? FS.writeAll(fd: fifo, "E" + ErrorCodec.encode(e))
        _exit(127)
    }

    /// The per-process part shared by the init and `exec`: rlimits, OOM score, user and
    /// capabilities, cwd, no_new_privs, the executable's path, umask, HOME. Returns (path, argv,
    /// environment).
    /// `keepFds`: the few setup sockets still needed; every other fd from 3 + `preservedFds` up is
    /// closed before the cwd is entered (see WorkingDirectory).
    /// Without no_new_privs the seccomp filter is loaded here, before the user switch (it needs
    /// CAP_SYS_ADMIN then); with it, the caller loads it last (`loadLateSeccomp`).
    static func prepareProcess(
        _ process: Process, env: [String], preservedFds: Int, keepFds: [Int32],
        seccomp: SeccompFilter?, sync: SyncSocket
    ) throws -> (String, [String], [String]) {
        Sys.closeFds(from: 3 + Int32(preservedFds), except: keepFds)
        // Before a seccomp filter could refuse the open, as root (runc reads it there too).
        let env = UserHome.environment(env, uid: process.user.uid)
        // Entered with every privilege still held, so a directory only root can search works for
        // a non-root process user (runc's order); before a seccomp filter could refuse openat2.
        let cwdEntered = try WorkingDirectory.enter(process.cwd, deferDenied: true)
        try LSM.applyOnExec(process)
        if let seccomp, process.noNewPrivileges != true { try SeccompAgent.load(seccomp, sync: sync) }
        for r in process.rlimits ?? [] {
            var lim = rlimit(rlim_cur: rlim_t(r.soft), rlim_max: rlim_t(r.hard))
            if setrlimit(__rlimit_resource_t(UInt32(RlimitNames.all[r.type]!)), &lim) != 0 {
                throw SkiffError.sys(
                    "setrlimit", r.type, hint: errno == EPERM ? "a hard limit cannot be raised above the current one without CAP_SYS_RESOURCE" : nil)
            }
        }
        if let adj = process.oomScoreAdj {
            do { try ProcSelf.write("oom_score_adj", "\(adj)") } catch var e as SkiffError where e.errno == EACCES || e.errno == EPERM {
                // Read as it was written: a path open here could wait on a FIFO the container put there.
                let current = ProcSelf.read("oom_score_adj")?.trimmingTrailingWhitespace() ?? "?"
                e.hint = "oomScoreAdj \(adj) is below the caller's \(current): lowering it needs CAP_SYS_RESOURCE on the host (rootless: never)"
                throw e
            }
        }

        fixStdioOwner(process.user.uid)
        try switchUser(process)
        if !cwdEntered { _ = try WorkingDirectory.enter(process.cwd, deferDenied: false) }
        if process.noNewPrivileges == true {
            if skiff_prctl(SKIFF_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 { throw SkiffError.sys("prctl", "no_new_privs") }
        }
        let args = process.args ?? []
        guard let arg0 = args.first, !arg0.isEmpty else { throw SkiffError.msg("config: process.args must not be empty") }
        let path = try resolveExecutable(arg0, env: env)
        umask(mode_t(process.user.umask ?? 0o022))
        return (path, args, env)
    }

    /// With no_new_privs the filter goes in as late as runc puts it: after everything of ours but
    /// reporting ready, the start barrier and the startContainer hooks (which run under it).
    static func loadLateSeccomp(_ filter: SeccompFilter?, _ process: Process, sync: SyncSocket) throws {
        if let filter, process.noNewPrivileges == true { try SeccompAgent.load(filter, sync: sync) }
    }

    /// runc's fixStdioPermissions: stdio (a terminal's slave, pipes, files) belongs to the
    /// process user, so a non-root process can use its console; the group stays (devpts gives
    /// the tty group, gid=5 in the usual mount options). The null device (1:3) is left alone,
    /// known by its number: the container's /dev/null is the container's to replace (runc asks
    /// it, and a regular file there got the caller's /dev/null, the host's, chowned to the
    /// process user). An owner the kernel will not change (unmapped ids, a read-only /dev) is
    /// left too.
    static func fixStdioOwner(_ uid: uid_t) {
        for fd: Int32 in 0...2 {
            var st = Glibc.stat()
            guard fstat(fd, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0x103 { continue }  // makedev(1, 3)
            if st.st_uid == uid { continue }
            _ = fchown(fd, uid, st.st_gid)
        }
    }

    /// Bounding set while still root, then groups and ids with KEEPCAPS, then E/P/I and ambient.
    static func switchUser(_ process: Process) throws {
        let caps = process.capabilities
        func nums(_ l: [String]?) -> [Int] { (l ?? []).compactMap { CapabilityNames.number($0) } }
        if let caps { try Caps.limitBounding(keep: Set(nums(caps.bounding))) }
        _ = skiff_prctl(SKIFF_PR_SET_KEEPCAPS, 1, 0, 0, 0)
        let groups = (process.user.additionalGids ?? []).map { gid_t($0) }
        if setgroups(groups.count, groups) != 0 && !(groups.isEmpty && errno == EPERM) {
            throw SkiffError.sys("setgroups", groups.map(String.init).joined(separator: ","))
        }
        if skiff_setresgid(process.user.gid, process.user.gid, process.user.gid) != 0 {
            throw SkiffError.sys("setresgid", "\(process.user.gid)", hint: "is the gid mapped in the user namespace?")
        }
        if skiff_setresuid(process.user.uid, process.user.uid, process.user.uid) != 0 {
            throw SkiffError.sys("setresuid", "\(process.user.uid)", hint: "is the uid mapped in the user namespace?")
        }
        _ = skiff_prctl(SKIFF_PR_SET_KEEPCAPS, 0, 0, 0, 0)
        try verifyIDs(process.user, groups: groups)
        if let caps {
            try Caps.setProcess(effective: nums(caps.effective), permitted: nums(caps.permitted), inheritable: nums(caps.inheritable))
            // The kernel only raises ambient caps that are permitted and inheritable; like runc, the
            // rest are skipped (runc's default spec lists ambient caps without inheritable ones).
            let pi = Set(nums(caps.permitted)).intersection(nums(caps.inheritable))
            try Caps.setAmbient(nums(caps.ambient).filter { pi.contains($0) })
        }
    }

    /// The switch really happened: real, effective and saved ids are the ones asked for (an id
    /// the kernel reads as "unchanged" would otherwise leave the process root).
    static func verifyIDs(_ user: User, groups: [gid_t]) throws {
        var r: uid_t = 0, e: uid_t = 0, s: uid_t = 0
        var rg: gid_t = 0, eg: gid_t = 0, sg: gid_t = 0
        guard skiff_getresuid(&r, &e, &s) == 0, skiff_getresgid(&rg, &eg, &sg) == 0 else { throw SkiffError.sys("getresuid") }
        if r != user.uid || e != user.uid || s != user.uid || rg != user.gid || eg != user.gid || sg != user.gid {
            throw SkiffError.msg(
                "switching to uid \(user.uid) gid \(user.gid) left uids \(r)/\(e)/\(s) gids \(rg)/\(eg)/\(sg)",
                hint: "refusing to run the process with ids it did not ask for")
        }
        let n = getgroups(0, nil)
        var have = [gid_t](repeating: 0, count: Int(max(n, 0)))
        if n > 0 { _ = getgroups(n, &have) }
        if !groups.isEmpty && Set(have) != Set(groups) {
            throw SkiffError.msg("setgroups \(groups.map(String.init).joined(separator: ",")) left groups \(have.map(String.init).joined(separator: ","))")
        }
    }

    /// PATH lookup inside the container, done before reporting ready so a missing binary fails `create`.
    static func resolveExecutable(_ arg0: String, env: [String]) throws -> String {
        func check(_ p: String) -> Int32 {
            guard let st = FS.fileStat(p) else { return errno }
            if (st.st_mode & S_IFMT) == S_IFDIR { return EISDIR }
            return access(p, X_OK) == 0 ? 0 : errno
        }
        if arg0.contains("/") {
            let e = check(arg0)
            if e != 0 { throw SkiffError("exec", arg0, errno: e) }
            return arg0
        }
        let pathVar =
            env.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        var firstErr: Int32 = ENOENT
        for dir in pathVar.split(separator: ":", omittingEmptySubsequences: false) {
            let p = (dir.isEmpty ? "." : String(dir)) + "/" + arg0
            let e = check(p)
            if e == 0 { return p }
            if e != ENOENT && firstErr == ENOENT { firstErr = e }
        }
        throw SkiffError("exec", arg0, errno: firstErr, detail: firstErr == ENOENT ? "executable file not found in $PATH" : nil)
    }

    /// Allocates the pty inside the container, makes the slave the process's stdio and
    /// /dev/console, and sends the master to the console socket (one fd, one SCM_RIGHTS cmsg).
    /// The container's /dev is its own to change (`exec` runs in a live container): /dev/ptmx is
    /// resolved inside the root with no magic links (a link to /proc/self/fd/N/.. would reach a
    /// host file through a descriptor we hold), must be a devpts pty master, and the slave
    /// comes from the master itself (TIOCGPTPEER), not from a path (runc 1.2 does the same).
    static func setupConsole(socket: Int32, _ process: Process, bindConsole: Bool = true) throws {
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        let master = InRoot.open(root, "/dev/ptmx", flags: O_RDWR | O_NOCTTY)
        let openErrno = errno
        close(root)
        if master < 0 {
            throw SkiffError("open", "/dev/ptmx", errno: openErrno, hint: "a terminal needs a devpts mount at /dev/pts")
        }
        defer { close(master) }
        // devpts's ptmx (the usual pts/ptmx link), or a 5:2 node (privileged specs list the
        // host's /dev/ptmx in linux.devices): the kernel takes the devpts next to it.
        var st = Glibc.stat()
        let fsType = skiff_fs_type(master)
        if fsType != 0x1cd1 && !(fstat(master, &st) == 0 && st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0x502) {  // DEVPTS_SUPER_MAGIC, makedev(5, 2)
            throw SkiffError.msg(
                "open \"/dev/ptmx\": not a pty master (file system magic 0x\(String(fsType, radix: 16)), device \(st.st_rdev >> 8):\(st.st_rdev & 0xff))",
                hint: "/dev/ptmx must be a link to pts/ptmx or the device 5:2")
        }
        if skiff_pty_unlock(master) != 0 { throw SkiffError.sys("unlockpt", "/dev/ptmx") }
        var n: UInt32 = 0
        if skiff_pty_number(master, &n) != 0 { throw SkiffError.sys("ptsname", "/dev/ptmx") }
        let slavePath = "/dev/pts/\(n)"
        let slave = skiff_pty_peer(master, O_RDWR | O_NOCTTY)
        if slave < 0 { throw SkiffError.sys("open the pty slave", slavePath) }
        if let size = process.consoleSize { _ = skiff_set_winsize(master, size.height, size.width) }
        if bindConsole { try Rootfs.bindInCurrentRoot(slavePath, onto: "/dev/console") }
        try Sys.sendFd(socket, master, payload: "/dev/ptmx")
        close(socket)
        if setsid() < 0 { throw SkiffError.sys("setsid") }
        if skiff_set_ctty(slave) != 0 { throw SkiffError.sys("ioctl TIOCSCTTY", slavePath) }
        for fd: Int32 in 0...2 where dup2(slave, fd) < 0 { throw SkiffError.sys("dup2", slavePath) }
        if slave > 2 { close(slave) }
    }
}

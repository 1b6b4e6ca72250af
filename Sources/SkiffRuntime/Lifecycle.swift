import Glibc
import SkiffSys
import SkiffSpec
import SkiffState
import SkiffCgroups

extension Runtime {
    public func status(of r: ContainerRecord) -> ContainerStatus { store.status(of: r) }

    public func ociState(_ r: ContainerRecord) -> OCIState {
        let st = status(of: r)
        return OCIState(
            ociVersion: r.ociVersion, id: r.id, status: st.rawValue,
            pid: st == .stopped ? 0 : r.pid, bundle: r.bundle, rootfs: r.rootfs, created: r.created,
            annotations: (r.annotations?.isEmpty ?? true) ? nil : r.annotations, owner: "")
    }

    public func state(id: String) throws -> OCIState {
        let r = try store.load(id)
        var st = ociState(r)
        if let dir = r.cgroupPath, let kills = Cgroup2.at(dir).oomKills(), kills > 0 { st.oomKilled = true }
        return st
    }

    /// Opens the start barrier. Waits until the init has passed its startContainer hooks and
    /// exec'd (the FIFO's write end closes on exec), polling the init's liveness like runc.
    public func start(id: String) throws {
        let lock = try store.lock(id)
        defer { close(lock) }
        let r = try store.load(id)
        switch status(of: r) {
        case .created: break
        case .stopped: throw SkiffError.msg("cannot start a container that has stopped")
        case .running: throw SkiffError.msg("cannot start an already running container")
        // Frozen, the init would never pass the start barrier (status says paused first).
        case .paused: throw SkiffError.msg("cannot start a container in the paused state", hint: "resume it first")
        case .creating: throw SkiffError.msg("cannot start a container in the creating state")
        }
        let fd = try FS.open(store.fifo(id), O_RDONLY | O_NONBLOCK)
        defer { close(fd) }
        try passBarrier(r, fd, fifo: true)
    }

    /// Reads the start barrier (`fd`: exec.fifo, or the pipe of a container `run` made) until
    /// the init has exec'd, then runs the poststart hooks. The caller holds the lock.
    func passBarrier(_ record: ContainerRecord, _ fd: Int32, fifo: Bool) throws {
        var r = record
        let id = r.id
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        var sawWriter = false
        var agentWatch = SeccompAgentWatch(pid: r.pid)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, 100)
            if n < 0 && errno != EINTR { throw SkiffError.sys("poll", fifo ? store.fifo(id) : "the start barrier") }
            if n <= 0 {
                if !Proc.isAlive(r.pid, startTime: r.startTime) {
                    throw SkiffError.msg("cannot start container \(quote(id)): its init process died")
                }
                try agentWatch.check("start \(quote(id))")
                continue
            }
            let got = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got > 0 { data.append(contentsOf: buf[0..<got]); sawWriter = true; continue }
            if got < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if got == 0 && (sawWriter || pfd.revents & Int16(POLLHUP) != 0) { break }
        }
        if fifo { unlink(store.fifo(id)) }
        if let e = StartBarrier.outcome(data, id: id) { throw e }
        Logger.shared.debug("start \(quote(id)): init pid \(r.pid) passed the start barrier")
        // `started` tells a created container from a running one while exec.fifo exists; one
        // `run` made never had a FIFO (status: running as soon as its init lives), so its state
        // is not written again.
        if fifo {
            r.started = true
            try store.save(r)
        }
        let st = OCIState(
            ociVersion: r.ociVersion, id: id, status: "running", pid: r.pid, bundle: r.bundle,
            annotations: r.annotations)
        HookRunner.runAll("poststart", r.poststart, state: st) { Logger.shared.warn($0) }
    }

    public func kill(id: String, signal: Int32, all: Bool) throws {
        let lock = try store.lock(id)
        defer { close(lock) }
        let r = try store.load(id)
        let st = status(of: r)
        if st == .creating { throw SkiffError.msg("cannot kill a container in the creating state") }
        if all, let dir = r.cgroupPath {
            // Every process in the container's cgroup, whatever the init's state: containerd and
            // runc's users rely on this to clean up after an init that exited and left others.
            let cg = Cgroup2.at(dir)
            if cg.exists { try cg.killAll(signal: signal) }
            return
        }
        if all && st != .stopped {
            // No cgroup (rootless without delegation): the init and what it started.
            for p in processesWithoutCgroup(r).reversed() { Glibc.kill(p, signal) }
            return
        }
        if st == .stopped { throw SkiffError.msg(.notRunning, "container not running") }
        // Without its own pid namespace, killing init would orphan the rest: signal the whole cgroup.
        if signal == SIGKILL && !r.ownPidNamespace, let dir = r.cgroupPath {
            try Cgroup2.at(dir).killAll(signal: signal)
        }
        if Glibc.kill(r.pid, signal) != 0 && !(signal == SIGKILL && errno == ESRCH) { throw SkiffError.sys("kill", "pid \(r.pid)") }
    }

    public func delete(id: String, force: Bool) throws {
        try StateStore.validateID(id)
        guard store.exists(id) else { throw SkiffError.msg(.notExist, "container \(quote(id)) does not exist") }
        let lock = try store.lock(id)
        defer { close(lock) }
        let r: ContainerRecord
        do {
            r = try store.load(id)
        } catch let e as SkiffError where e.kind == .notExist {
            // A leftover directory from a create that never finished (no record yet): remove it.
            try store.remove(id)
            return
        }
        let st = status(of: r)
        if r.creatorPid != nil, r.cgroupCreatedTop != nil, let dir = r.cgroupPath {
            // Half-created: whatever the create had started (stage one, the init) is in the cgroup.
            try? Cgroup2.at(dir).killAll()
        }
        switch st {
        case .stopped: break
        case .created, .creating:
            killAndWait(r)
        case .running, .paused:
            guard force else { throw SkiffError.msg("cannot delete container \(id) that is not stopped: \(st.rawValue)") }
            if st == .paused, let dir = r.cgroupPath { try? Cgroup2.at(dir).setFrozen(false) }
            killAndWait(r)
        }
        try destroy(r)
    }

    func killAndWait(_ r: ContainerRecord) {
        // kill(0) would hit our own process group; a dead init's pid may belong to someone else.
        guard r.pid > 0, Proc.isAlive(r.pid, startTime: r.startTime) else { return }
        // With its own pid namespace the kernel takes everything down with init; otherwise the
        // cgroup is the only handle on the container's other processes.
        if !r.ownPidNamespace, r.cgroupCreatedTop != nil, let dir = r.cgroupPath { try? Cgroup2.at(dir).killAll() }
        _ = Glibc.kill(r.pid, SIGKILL)
        for _ in 0..<1000 where Proc.isAlive(r.pid, startTime: r.startTime) { sleepMillis(10) }
    }

    func destroy(_ r: ContainerRecord) throws {
        if let moved = r.netDevices { NetDevices.moveOut(moved, store: store, id: r.id) }
        if let dir = r.cgroupPath {
            let cg = Cgroup2.at(dir)
            // A cgroup that existed before the container (shared, given by cgroupsPath) is not
            // emptied: it goes (with its empty children, as runc's RemovePath) only when nothing
            // is left in it. Ours is emptied and removed.
            let ours = r.cgroupCreatedTop != nil
            // What is left when the init had no pid namespace of its own is killed (runc's
            // destroy); with its own, the kernel took everything down with the init.
            do { try cg.remove(createdTop: r.cgroupCreatedTop, killRemaining: ours && !r.ownPidNamespace, waitBusy: ours) } catch {
                // Still busy: another container shares the path. Leave it, like runc.
                Logger.shared.warn("delete \(quote(r.id)): \(error)")
            }
        }
        if let unit = r.systemdUnit {
            // After what was left is killed (a stop would SIGTERM it and wait systemd's stop
            // timeout); systemd unloads an empty scope itself, this stops one still loaded.
            do { try Systemd.stopUnit(unit) } catch { Logger.shared.warn("delete \(quote(r.id)): stop \(unit): \(error)") }
        }
        try store.remove(r.id)
        Logger.shared.debug("delete \(quote(r.id)): state and cgroup removed")
        let st = OCIState(ociVersion: r.ociVersion, id: r.id, status: "stopped", pid: nil, bundle: r.bundle, annotations: r.annotations)
        HookRunner.runAll("poststop", r.poststop, state: st) { Logger.shared.warn($0) }
    }

    public func list() throws -> [OCIState] {
        try store.ids().compactMap { id in
            guard let r = try? store.load(id) else { return nil }
            return ociState(r)
        }
    }
}

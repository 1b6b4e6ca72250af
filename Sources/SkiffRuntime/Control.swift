import Glibc
import SkiffSys
import SkiffSpec
import SkiffCgroups
import SkiffJSON

extension Runtime {
    func runningCgroup(_ id: String, op: String) throws -> (ContainerRecord, Cgroup2) {
        let r = try store.load(id)
        guard let dir = r.cgroupPath else {
            throw SkiffError.msg(
                "\(op): container \(quote(id)) has no cgroup",
                hint: "it was created without one: no cgroup2 mount, or rootless without a delegated cgroup")
        }
        return (r, Cgroup2.at(dir))
    }

    /// Host pids of every process in the container's cgroup.
    /// Without a cgroup (rootless, nothing delegated): the processes of its pid namespace, or
    /// without one of its own the init and its descendants.
    public func pids(id: String) throws -> [pid_t] {
        let r = try store.load(id)
        if status(of: r) == .stopped { return [] }
        guard let dir = r.cgroupPath else { return processesWithoutCgroup(r) }
        return try Cgroup2.at(dir).procs()
    }

    func processesWithoutCgroup(_ r: ContainerRecord) -> [pid_t] {
        r.ownPidNamespace ? Proc.inPidNamespace(of: r.pid) : Proc.selfAndDescendants(r.pid)
    }

    /// Freezes the cgroup and waits (bounded) until the kernel reports it frozen; on timeout the
    /// freeze is undone so the container is never left half-frozen.
    public func pause(id: String) throws {
        let lock = try store.lock(id)
        defer { close(lock) }
        let (r, cg) = try runningCgroup(id, op: "pause")
        // runc's rule: a created container (its init waiting to start) can be paused; a paused
        // one cannot be paused again.
        switch status(of: r) {
        case .running, .created: break
        case .paused: throw SkiffError.msg(.notRunning, "cannot pause container \(quote(id)): it is not running (already paused)")
        default: throw SkiffError.msg(.notRunning, "cannot pause container \(quote(id)): it is not running")
        }
        try cg.setFrozen(true)
        for _ in 0..<1000 {
            if cg.isFrozen() { return }
            sleepMillis(2)
        }
        try? cg.setFrozen(false)
        throw SkiffError.msg("pause \(quote(id)): the cgroup did not freeze within 2 s; it was thawed again")
    }

    /// `update`: applies new resource limits to a live container's cgroup.
    public func update(id: String, resources: Resources) throws {
        let lock = try store.lock(id)
        defer { close(lock) }
        let r = try store.load(id)
        if status(of: r) == .stopped { throw SkiffError.msg("cannot update container \(quote(id)): it is stopped") }
        guard let dir = r.cgroupPath else { throw SkiffError.msg("update: container \(quote(id)) has no cgroup") }
        // The unit first (runc's order): systemd writes what it knows, then the files; a
        // daemon-reload later re-applies the unit's values, which are then the new ones.
        if let unit = r.systemdUnit {
            let props = try Systemd.resourceProperties(resources)
            if !props.isEmpty { try Systemd.setProperties(unit, props) }
        }
        try Cgroup2.fromDirectory(dir).apply(resources, skipUnavailable: skipUnavailableCgroups) { Logger.shared.warn($0) }
    }

    /// `events`: a stats event every `interval` ms (or one with `once`), and an oom event each
    /// time memory.events' oom_kill grows; ends when the container stops.
    public func events(id: String, intervalMs: Int, once: Bool, emit: (String) -> Void) throws {
        var r = try store.load(id)
        if status(of: r) == .stopped { throw SkiffError.msg(.notRunning, "container with id \(id) is not running") }
        guard let dir = r.cgroupPath else { throw SkiffError.msg("events: container \(quote(id)) has no cgroup") }
        let cg = Cgroup2.at(dir)
        func event(_ type: String, _ data: JSONValue?) -> String {
            var m: [(String, JSONValue)] = [("type", .string(type)), ("id", .string(id))]
            if let data { m.append(("data", data)) }
            return JSONValue.object(m).serialized()
        }
        if once { emit(event("stats", cg.stats())); return }
        var ooms = cg.oomKills() ?? 0
        var waited = intervalMs
        while true {
            if let now = cg.oomKills(), now > ooms { ooms = now; emit(event("oom", nil)) }
            if waited >= intervalMs { emit(event("stats", cg.stats())); waited = 0 }
            sleepMillis(100)
            waited += 100
            r = (try? store.load(id)) ?? r
            if !store.exists(id) || status(of: r) == .stopped {
                if let now = cg.oomKills(), now > ooms { emit(event("oom", nil)) }
                return
            }
        }
    }

    public func resume(id: String) throws {
        let lock = try store.lock(id)
        defer { close(lock) }
        let (r, cg) = try runningCgroup(id, op: "resume")
        guard status(of: r) == .paused else { throw SkiffError.msg("cannot resume container \(quote(id)): it is not paused") }
        try cg.setFrozen(false)
        for _ in 0..<1000 where cg.isFrozen() { sleepMillis(2) }
    }
}

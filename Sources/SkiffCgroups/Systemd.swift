import Glibc
import SkiffSys
import SkiffSpec

/// The systemd cgroup driver (`--systemd-cgroup`, the runc shim's `SystemdCgroup = true`, what
/// kubeadm clusters use): the container's cgroup is a transient scope unit that systemd makes
/// and owns, with `Delegate=yes` so the runtime may write its files, as runc's systemd manager
/// does through D-Bus. Without a running systemd the same `slice:prefix:name` is mapped onto the
/// cgroupfs layout systemd would use (see Cgroup2.resolve), with a warning.
public enum Systemd {
    static let manager = "/org/freedesktop/systemd1"
    static let managerInterface = "org.freedesktop.systemd1.Manager"
    /// runc waits as long for a unit job (its startUnit timeout).
    static let jobTimeoutMs = 30_000

    /// Whether systemd runs as the system manager here (sd_booted's test).
    public static var isRunning: Bool { FS.isDirectory("/run/systemd/system") }

    /// A connection to systemd's manager: its private socket as root (no bus daemon in between,
    /// as systemctl does), else the system bus.
    public static func connect() throws -> DBusConnection {
        // systemd hangs up on the private socket for a peer it will not serve there (one outside
        // its pid namespace, for instance): the bus is then the way, as it is for runc.
        if getuid() == 0, FS.exists("/run/systemd/private"), let c = try? DBusConnection(path: "/run/systemd/private", bus: false) {
            do {
                try c.call(path: manager, interface: "org.freedesktop.DBus.Peer", member: "Ping")
                return c
            } catch {}
        }
        do { return try DBusConnection(path: "/run/dbus/system_bus_socket", bus: true) } catch {
            throw SkiffError(
                "connect to systemd", "/run/dbus/system_bus_socket", detail: "\(error)", hint: "is dbus running? (--systemd-cgroup needs systemd's D-Bus API)")
        }
    }

    /// The unit and slice a `slice:prefix:name` cgroupsPath names (runc's rules: an empty slice is
    /// system.slice; `prefix-name.scope`, or the name itself when it is a slice). Each part must be
    /// a unit name (systemd's characters, no `/`, no leading dot, a slice of non-empty
    /// dash-separated parents): they become path components and D-Bus arguments.
    public static func unit(cgroupsPath: String?, id: String) throws -> (unit: String, slice: String) {
        guard let p = cgroupsPath, !p.isEmpty else { return ("skiff-\(id).scope", "system.slice") }
        let parts = p.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else {
            throw SkiffError.msg("cgroupsPath \(quote(p)) is not slice:prefix:name", hint: "required with --systemd-cgroup")
        }
        let unitChars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
        for part in parts where !part.allSatisfy(unitChars.contains) || part.hasPrefix(".") {
            throw SkiffError.msg("cgroupsPath \(quote(p)): \(quote(part)) is not a systemd unit name", hint: "slice:prefix:name, e.g. system.slice:skiff:web")
        }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        // `a--b.slice` is not a slice name; `-.slice` is the root slice.
        guard slice.hasSuffix(".slice"), !parts[2].isEmpty,
            slice == "-.slice" || !slice.dropLast(6).split(separator: "-", omittingEmptySubsequences: false).contains("")
        else {
            throw SkiffError.msg("cgroupsPath \(quote(p)) is not slice:prefix:name", hint: "the slice ends in .slice and the name is not empty")
        }
        if parts[2].hasSuffix(".slice") { return (parts[2], slice) }
        return ((parts[1].isEmpty ? parts[2] : "\(parts[1])-\(parts[2])") + ".scope", slice)
    }

    /// A unit property list, `a(sv)`.
    static func propertyArray(_ props: [(String, DBusValue)]) -> DBusValue {
        .array(element: "(sv)", props.map { .structure([.string($0.0), .variant($0.1)]) })
    }

    /// Starts `unit` as a transient scope holding `pid`, in `slice`, delegated, with the limits
    /// systemd knows as properties (so a daemon-reload does not reset what the runtime then
    /// writes into the cgroup), and waits for systemd's job to finish. `started` is called once
    /// systemd has taken the unit (ours to stop from then on, even if its job fails); a refused
    /// start (the unit exists) is not ours.
    public static func startScope(
        _ unit: String, slice: String, pid: pid_t, description: String, properties limits: [(String, DBusValue)], started: () -> Void
    ) throws {
        let c = try connect()
        try subscribe(c)
        var props: [(String, DBusValue)] = [
            ("Description", .string(description)), ("Slice", .string(slice)), ("Delegate", .bool(true)),
            ("PIDs", .array(element: "u", [.uint32(UInt32(pid))])), ("DefaultDependencies", .bool(false)),
            ("MemoryAccounting", .bool(true)), ("CPUAccounting", .bool(true)), ("IOAccounting", .bool(true)), ("TasksAccounting", .bool(true)),
            // A scope that failed (its init OOM-killed, say) is unloaded like a stopped one, so the
            // same id can be created again.
            ("CollectMode", .string("inactive-or-failed"))
        ]
        props += limits
        let reply = try c.call(
            path: manager, interface: managerInterface, member: "StartTransientUnit",
            [.string(unit), .string("replace"), propertyArray(props), .array(element: "(sa(sv))", [])])
        started()
        try waitForJob(c, reply.first?.text, unit: unit, what: "start")
    }

    /// Stops the unit (systemd kills what is left in it and removes its cgroup) and waits; a unit
    /// that is already gone is not an error.
    public static func stopUnit(_ unit: String) throws {
        let c = try connect()
        try subscribe(c)
        let reply: [DBusValue]
        do {
            reply = try c.call(path: manager, interface: managerInterface, member: "StopUnit", [.string(unit), .string("replace")])
        } catch let e as SkiffError where e.object == "org.freedesktop.systemd1.NoSuchUnit" {
            return
        }
        try waitForJob(c, reply.first?.text, unit: unit, what: "stop")
    }

    /// Changes a live unit's properties (runtime only, as runc's update does).
    public static func setProperties(_ unit: String, _ props: [(String, DBusValue)]) throws {
        let c = try connect()
        try c.call(
            path: manager, interface: managerInterface, member: "SetUnitProperties",
            [.string(unit), .bool(true), propertyArray(props)])
    }

    /// JobRemoved comes only to subscribers (and, on a bus, to those who asked for it).
    static func subscribe(_ c: DBusConnection) throws {
        if c.viaBus {
            try c.call(
                path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "AddMatch", destination: "org.freedesktop.DBus",
                [.string("type='signal',sender='org.freedesktop.systemd1',interface='\(managerInterface)',member='JobRemoved'")])
        }
        try c.call(path: manager, interface: managerInterface, member: "Subscribe")
    }

    static func waitForJob(_ c: DBusConnection, _ job: String?, unit: String, what: String) throws {
        guard let job else { throw SkiffError("systemd \(what)", unit, detail: "no job in systemd's answer") }
        // JobRemoved(u id, o job, s unit, s result)
        let m = try c.waitSignal(member: "JobRemoved", timeoutMs: jobTimeoutMs) { $0.body.count == 4 && $0.body[1].text == job }
        let result = m.body[3].text ?? ""
        guard result == "done" else {
            throw SkiffError("systemd \(what)", unit, detail: "job \(result)", hint: "journalctl -u \(unit) says why")
        }
    }

    /// runc's mapping of OCI limits onto systemd properties (cgroup v2), read as the cgroup files
    /// read them (CgroupResources.plan, which checks the values first and throws for what it
    /// refuses): 0 leaves a limit as it is, -1 is none. Values past what systemd takes are
    /// clamped (the config is untrusted, and a trap here would take the shim down with every
    /// container it serves).
    public static func resourceProperties(_ r: Resources?) throws -> [(String, DBusValue)] {
        guard let r else { return [] }
        _ = try CgroupResources.plan(r)
        var out: [(String, DBusValue)] = []
        if let limit = r.memory?.limit, limit != 0 { out.append(("MemoryMax", .uint64(limit < 0 ? UInt64.max : UInt64(limit)))) }
        if let limit = r.pids?.limit, limit != 0 { out.append(("TasksMax", .uint64(limit < 0 ? UInt64.max : UInt64(limit)))) }
        if let shares = r.cpu?.shares, shares > 0 {
            // The cgroup v1 shares → v2 weight conversion runc and crun use.
            out.append(("CPUWeight", .uint64(1 + ((min(max(shares, 2), 262_144) - 2) * 9999) / 262_142)))
        }
        if let quota = r.cpu?.quota, quota > 0 {
            // A period of 0 keeps the default one (as for cpu.max).
            let given = r.cpu?.period ?? 0
            let period = given == 0 ? 100_000 : given
            // systemd takes the quota per second, in whole 10 ms steps (runc rounds up).
            let (scaled, overflow) = UInt64(quota).multipliedReportingOverflow(by: 1_000_000)
            var perSec = overflow ? UInt64.max : scaled / max(period, 1)
            if perSec % 10_000 != 0 && perSec <= UInt64.max - 10_000 { perSec = (perSec / 10_000 + 1) * 10_000 }
            out.append(("CPUQuotaPerSecUSec", .uint64(perSec)))
        }
        return out
    }
}

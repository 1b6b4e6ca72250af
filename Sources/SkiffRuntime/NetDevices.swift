import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffState

/// linux.netDevices (runtime-spec 1.2): host interfaces moved into the container's network
/// namespace at create (renamed when asked) and moved back, with their host names, at delete.
/// The namespace is kept alive by a bind mount of it at `<state>/netns`, so the devices can be
/// moved back even after the init exited (a virtual device would otherwise die with it).
enum NetDevices {
    static func keepFile(_ store: StateStore, _ id: String) -> String { store.dir(id) + "/netns" }

    /// In the runtime, once the init (and its network namespace) exists.
    /// `progress` sees what was moved so far, so a failure midway can move those back.
    static func moveIn(
        _ devices: [String: NetDevice], initPid: pid_t, store: StateStore, id: String,
        progress: ([String: String]) -> Void
    ) throws -> [String: String] {
        let nsPath = "/proc/\(initPid)/ns/net"
        let keep = keepFile(store, id)
        try FS.createFileIfMissing(keep, mode: 0o400)
        try Sys.mount(nsPath, keep, nil, UInt(MS_BIND), nil)
        let ns = try FS.open(nsPath, O_RDONLY)
        defer { close(ns) }
        var nl = try Netlink()
        defer { nl.close() }
        var moved: [String: String] = [:]
        for (host, d) in devices.sorted(by: { $0.key < $1.key }) {
            try withContext("linux.netDevices") { try nl.move(host, toNamespace: ns, newName: d.name) }
            moved[host] = d.name ?? host
            progress(moved)
        }
        return moved
    }

    /// In the runtime at delete: every device back to our namespace under its host name, from a
    /// child that joins the container's namespace (our own stays where it is).
    static func moveOut(_ moved: [String: String], store: StateStore, id: String) {
        let keep = keepFile(store, id)
        defer { _ = umount2(keep, SKIFF_MNT_DETACH); unlink(keep) }
        guard !moved.isEmpty, let ns = try? FS.open(keep, O_RDONLY), let home = try? FS.open("/proc/self/ns/net", O_RDONLY) else { return }
        defer { close(ns); close(home) }
        let pid = fork()
        if pid == 0 {
            if skiff_setns(ns, Int32(SKIFF_CLONE_NEWNET)) != 0 { _exit(1) }
            guard var nl = try? Netlink() else { _exit(1) }
            var failed = false
            for (host, inside) in moved.sorted(by: { $0.key < $1.key }) {
                do { try nl.move(inside, toNamespace: home, newName: host) } catch {
                    Logger.shared.warn("delete \(quote(id)): \(error)")
                    failed = true
                }
            }
            _exit(failed ? 1 : 0)
        }
        if pid > 0 { _ = Sys.wait(pid) }
    }

    /// In the init: `lo` up in a network namespace of its own (runc and crun do the same).
    static func loopbackUp() throws {
        var nl = try Netlink()
        defer { nl.close() }
        try withContext("network namespace") { try nl.setUp("lo") }
    }
}

import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffRootfs

/// A container in a new user namespace is root only there: its init cannot search a directory
/// that only the caller's root may (the store's 0700 bundles, a 0700 bind source). Stage one,
/// still the caller, joins the init's mount namespace and opens the rootfs and every bind
/// source there as O_PATH fds, and hands them to the init, which clones mounts from them (a
/// mount can only be cloned in the namespace it belongs to: hence the join). runc does the same
/// for its mount sources.
enum HostPaths {
    /// Stage one's side: the rootfs first, then each bind source in spec order.
    static func send(to sock: Int32, initPid: pid_t, plan: InitPlan) throws {
        defer { close(sock) }
        let ns = try FS.open("/proc/\(initPid)/ns/mnt", O_RDONLY)
        defer { close(ns) }
        if skiff_setns(ns, Int32(SKIFF_CLONE_NEWNS)) != 0 { throw SkiffError.sys("join mount namespace", "of pid \(initPid)") }
        func pass(_ path: String, _ what: String, directory: Bool) throws {
            let fd = try FS.open(path, InRoot.oPath | (directory ? O_DIRECTORY : 0))
            defer { close(fd) }
            try Sys.sendFd(sock, fd, payload: what)
        }
        try pass(plan.rootfs, "rootfs", directory: true)
        for (i, m) in (plan.spec.mounts ?? []).enumerated() where Rootfs.isBind(m) {
            try withContext("mount \(quote(m.destination))") { try pass(Rootfs.hostSource(m, rootfs: plan.rootfs), "mount \(i)", directory: false) }
        }
    }

    /// The init's side.
    static func receive(from sock: Int32, spec: Spec) throws -> Rootfs.OpenedPaths {
        defer { close(sock) }
        let rootfs = try Sys.recvFd(sock).fd
        var sources: [Int: Int32] = [:]
        for (i, m) in (spec.mounts ?? []).enumerated() where Rootfs.isBind(m) { sources[i] = try Sys.recvFd(sock).fd }
        return Rootfs.OpenedPaths(rootfs: rootfs, sources: sources)
    }
}

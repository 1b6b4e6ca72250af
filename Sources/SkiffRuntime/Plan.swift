import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffCgroups
import SkiffSeccomp

/// Everything the container init needs, computed in the parent before any fork so the child
/// only executes a plan.
struct InitPlan {
    var id: String
    var spec: Spec
    var bundle: String
    var rootfs: String
    var cloneFlags: UInt = 0
    /// (clone flag, path) joins, user namespace first.
    var joins: [(UInt, String)] = []
    var newUserNamespace: Bool { cloneFlags & UInt(SKIFF_CLONE_NEWUSER) != 0 }
    var newTimeNamespace = false
    var hasMountNamespace = false
    /// A pid namespace of its own (the init is its pid 1), not one joined by path: only then does
    /// the kernel take the container's other processes down with the init (runc's IsPrivate).
    var createsPidNamespace = false
    var hasCgroupNamespace = false
    var cgroup: Cgroup2?
    var noPivot = false
    /// fds 3..<3+preserved survive into the container.
    var preservedFds = 0
    var consoleSocketFd: Int32 = -1
    /// Installed as fds 0-2 by stage one (nil: inherit the caller's).
    var stdio: [Int32]?
    /// exec.fifo, opened read-write: the init's start barrier (StartBarrier). The init holds no
    /// directory of the host (the state directory's fd, kept when the container had no /proc,
    /// let a neighbour with CAP_SYS_PTRACE walk out through /proc/1/fd).
    var fifoFd: Int32 = -1
    var syncFd: Int32 = -1
    /// Stage one reports the init's pid here, apart from the init's own messages on syncFd, so a
    /// fast init's "ready" can never overtake the pid.
    var pidFd: Int32 = -1
    /// The parent's flock fd: an inherited copy would keep the container locked until exec.
    var lockFd: Int32 = -1
    /// The container's cgroup directory, for clone3(CLONE_INTO_CGROUP): a migration through
    /// cgroup.procs costs ~10 ms (it waits for an RCU grace period); being born there costs nothing.
    var cgroupFd: Int32 = -1
    /// With a new user namespace: the init's end of the socket on which stage one sends it the
    /// rootfs and the bind sources, opened with the caller's credentials (see HostPaths).
    var hostPathsFd: Int32 = -1
    /// Built in the parent so a bad profile fails before anything is created; loaded by the init.
    var seccomp: SeccompFilter?
    var env: [String] = []
    /// clone3 makes the cgroup namespace of the parent's cgroup, so with CLONE_INTO_CGROUP the
    /// init unshares it itself once it is in its cgroup.
    var unshareCgroupLater = true
    var initCloneFlags: UInt { cloneFlags & ~UInt(SKIFF_CLONE_NEWCGROUP) }
    var hasCreateHooks: Bool {
        !(spec.hooks?.prestart ?? []).isEmpty || !(spec.hooks?.createRuntime ?? []).isEmpty
    }

    static let nsFlags: [String: UInt] = [
        "pid": UInt(SKIFF_CLONE_NEWPID), "network": UInt(SKIFF_CLONE_NEWNET), "mount": UInt(SKIFF_CLONE_NEWNS),
        "ipc": UInt(SKIFF_CLONE_NEWIPC), "uts": UInt(SKIFF_CLONE_NEWUTS), "user": UInt(SKIFF_CLONE_NEWUSER),
        "cgroup": UInt(SKIFF_CLONE_NEWCGROUP), "time": UInt(SKIFF_CLONE_NEWTIME)
    ]

    init(id: String, spec: Spec, bundle: String) throws {
        self.id = id
        self.spec = spec
        self.bundle = bundle
        // The real path: mounts are matched against mountinfo, which has no symlinks.
        let given = FS.absolute(spec.root!.path, base: bundle)
        guard let real = realpath(given, nil) else { throw SkiffError.sys("rootfs", given) }
        self.rootfs = String(cString: real)
        free(real)
        var userJoin: (UInt, String)?
        var otherJoins: [(UInt, String)] = []
        for ns in spec.linux?.namespaces ?? [] {
            let flag = InitPlan.nsFlags[ns.type]!
            switch ns.type {
            case "mount": hasMountNamespace = true
            case "cgroup": hasCgroupNamespace = true
            default: break
            }
            if let path = ns.path, !path.isEmpty {
                guard FS.exists(path) else {
                    throw SkiffError("namespace \(ns.type)", path, errno: ENOENT, hint: "the namespace path must exist")
                }
                if ns.type == "user" {
                    userJoin = (flag, path)
                } else if ns.type == "mount" {
                    otherJoins.append((flag, path))
                } else {
                    otherJoins.insert((flag, path), at: 0)
                }
            } else if ns.type == "time" {
                newTimeNamespace = true
            } else {
                cloneFlags |= flag
                if ns.type == "pid" { createsPidNamespace = true }
            }
        }
        if let u = userJoin { joins.append(u) }
        joins += otherJoins
        env = spec.process?.env ?? []
    }
}

import Glibc
import SkiffSys
import SkiffSpec

/// What changes when the runtime is not root on the host (runc's rootless mode): the state root,
/// id maps written by an unprivileged parent, and cgroups only where they were delegated.
public enum Rootless {
    /// runc's rule: a non-root user, or "root" of a user namespace that is not really root (rootlesskit
    /// keeps USER), keeps state under $XDG_RUNTIME_DIR; everyone else under /run.
    public static func defaultStateRoot() -> String {
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty {
            if geteuid() != 0 { return xdg + "/skiff" }
            if inUserNamespace, getenv("USER").map({ String(cString: $0) }) != "root" { return xdg + "/skiff" }
        }
        return "/run/skiff"
    }

    /// `--rootless true|false|auto`: auto means not root, or root of a user namespace (rootlesskit).
    public static func decide(_ value: String) -> Bool {
        switch value {
        case "true": return true
        case "false": return false
        default: return geteuid() != 0 || inUserNamespace
        }
    }

    public static var inUserNamespace: Bool { Proc.inUserNamespace }

    /// Writes the init's uid_map and gid_map. Root writes them directly; an unprivileged parent may
    /// map only its own id, and for gid_map only after setgroups is denied (user_namespaces(7));
    /// any other mapping goes through the setuid helpers newuidmap/newgidmap, which check the
    /// ranges /etc/subuid and /etc/subgid give the user.
    static func writeIDMaps(pid: pid_t, uid: [IDMapping], gid: [IDMapping]) throws {
        try write(pid: pid, file: "uid_map", helper: "newuidmap", uid, own: UInt32(geteuid()))
        try write(pid: pid, file: "gid_map", helper: "newgidmap", gid, own: UInt32(getegid()))
    }

    static func write(pid: pid_t, file: String, helper: String, _ maps: [IDMapping], own: UInt32) throws {
        let text = maps.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        let path = "/proc/\(pid)/\(file)"
        do {
            try FS.writeFile(path, text, flags: O_WRONLY)
            return
        } catch let e as SkiffError where e.errno == EPERM && geteuid() != 0 {
            _ = e
        }
        let ownOnly = maps.count == 1 && maps[0].hostID == own && maps[0].size == 1
        if ownOnly && file == "gid_map" {
            // An unprivileged process may map its own gid only once setgroups is denied.
            try FS.writeFile("/proc/\(pid)/setgroups", "deny", flags: O_WRONLY)
            try FS.writeFile(path, text, flags: O_WRONLY)
            return
        }
        guard let tool = FS.which(helper, path: (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin") + ":/usr/sbin:/usr/bin") else {
            throw SkiffError(
                "write \(file)", path, errno: EPERM,
                hint:
                    "mapping more than your own id needs \(helper) (Debian: apt install uidmap) and ranges for your user in /etc/sub\(file.hasPrefix("uid") ? "uid" : "gid")"
            )
        }
        let args = [tool, "\(pid)"] + maps.flatMap { ["\($0.containerID)", "\($0.hostID)", "\($0.size)"] }
        let r = try Spawn.run(path: tool, args: args, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], stdin: [], timeout: 10)
        if r.status != 0 {
            throw SkiffError.msg(
                "\(helper) \(args.dropFirst().joined(separator: " ")): \(r.outputText.isEmpty ? "exit status \(r.status)" : r.outputText)",
                hint: "the ranges must be in /etc/sub\(file.hasPrefix("uid") ? "uid" : "gid") for your user")
        }
    }

    /// Whether the config asks for a limit a controller of this hierarchy would enforce (runc's
    /// needAnyControllers: a limit whose controller the hierarchy lacks could not be applied anyway,
    /// as ctr's default cpu shares on a host without the cpu controller).
    static func asksForResources(_ r: Resources?, available: Set<String>) -> Bool {
        guard let r else { return false }
        func has(_ c: String) -> Bool { available.contains(c) }
        return (r.memory != nil && has("memory")) || (r.cpu.map { $0.cpus != nil || $0.mems != nil } == true && has("cpuset"))
            || (r.cpu.map { $0.shares != nil || $0.quota != nil || $0.period != nil || $0.idle != nil } == true && has("cpu"))
            || (r.pids != nil && has("pids")) || (r.blockIO != nil && has("io"))
            || (!(r.hugepageLimits ?? []).isEmpty && has("hugetlb")) || (!(r.rdma ?? [:]).isEmpty && has("rdma"))
            || !(r.unified ?? [:]).isEmpty
    }
}

import SkiffSys

/// Checks a decoded config before anything is touched on the host, so a bad config leaves
/// nothing behind. Errors name the field and, where useful, what would be valid.
public enum Validation {
    public static let supportedMajor = 1

    public static func validate(_ spec: Spec, bundle: String) throws {
        try validateVersion(spec.ociVersion)
        guard let root = spec.root else {
            throw SkiffError.msg("config: root is required", hint: "add \"root\": {\"path\": \"rootfs\"}")
        }
        if root.path.isEmpty { throw SkiffError.msg("config: root.path is empty") }
        let rootfs = FS.absolute(root.path, base: bundle)
        if !FS.isDirectory(rootfs) {
            throw SkiffError(
                "rootfs", rootfs, errno: FS.exists(rootfs) ? 20 : 2,
                hint: "root.path is resolved against the bundle \(bundle)")
        }
        if let p = spec.process { try validateProcess(p) }
        for m in spec.mounts ?? [] {
            try requireAbsolute(m.destination, "mounts[].destination")
            if let t = m.type, t.isEmpty { throw SkiffError.msg("config: mount \(quote(m.destination)) has an empty type") }
            _ = try MountOptions.parse(m.options ?? [], destination: m.destination)
        }
        if let hooks = spec.hooks {
            for (kind, list) in [
                ("prestart", hooks.prestart), ("createRuntime", hooks.createRuntime),
                ("createContainer", hooks.createContainer), ("startContainer", hooks.startContainer),
                ("poststart", hooks.poststart), ("poststop", hooks.poststop)
            ] {
                for h in list ?? [] {
                    try requireAbsolute(h.path, "hooks.\(kind)[].path")
                    if let t = h.timeout, t <= 0 { throw SkiffError.msg("config: hooks.\(kind): timeout must be > 0, got \(t)") }
                }
            }
        }
        if let linux = spec.linux { try validateLinux(linux, spec: spec) }
    }

    public static func validateVersion(_ v: String) throws {
        let core = v.split(separator: "-", maxSplits: 1).first.map(String.init) ?? v
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }), let major = Int(parts[0]) else {
            throw SkiffError.msg("config: invalid ociVersion \(quote(v))", hint: "expected a semantic version like 1.2.0")
        }
        if major != supportedMajor {
            throw SkiffError.msg("config: unsupported ociVersion \(quote(v))", hint: "this runtime implements 1.x")
        }
    }

    /// The largest uid or gid runc accepts. Above it lies (uid_t)-1, which setresuid reads as
    /// "leave unchanged": a process asked to run as 4294967295 would stay root.
    public static let maxID: UInt32 = 2_147_483_647

    /// A uid or gid from user input, or an error that names where it came from.
    public static func checkID(_ id: UInt32, _ field: String) throws {
        if id > maxID {
            throw SkiffError.msg("config: \(field) \(id) is out of range", hint: "uids and gids go from 0 to \(maxID)")
        }
    }

    public static func validateProcess(_ p: Process) throws {
        if p.cwd.isEmpty || !p.cwd.hasPrefix("/") {
            throw SkiffError.msg("config: process.cwd \(quote(p.cwd)) is not an absolute path")
        }
        try checkID(p.user.uid, "process.user.uid")
        try checkID(p.user.gid, "process.user.gid")
        for g in p.user.additionalGids ?? [] { try checkID(g, "process.user.additionalGids") }
        // runtime-spec (since 1.0.3): a capability that cannot be granted is logged as a
        // warning and the container runs without it. runc and crun warn the same way.
        if let caps = p.capabilities {
            // Set by set, without an array of the sets: a generic type made at run time costs
            // every `run` its metadata's pages (see Benchmark).
            var unknown: [String] = []
            func collect(_ names: [String]?) {
                for n in names ?? [] where CapabilityNames.number(n) == nil && !unknown.contains(n) { unknown.append(n) }
            }
            collect(caps.bounding); collect(caps.effective); collect(caps.inheritable); collect(caps.permitted); collect(caps.ambient)
            if !unknown.isEmpty { Logger.shared.warn("ignoring unknown or unavailable capabilities: [\(unknown.joined(separator: " "))]") }
        }
        var seen: [String] = []  // a handful: a Set's storage type is made at run time, on every create
        for r in p.rlimits ?? [] {
            guard RlimitNames.all[r.type] != nil else {
                throw SkiffError.msg(
                    "config: process.rlimits: unknown rlimit type \(quote(r.type))",
                    hint: "valid types are RLIMIT_NOFILE, RLIMIT_NPROC, ...")
            }
            if seen.contains(r.type) { throw SkiffError.msg("config: process.rlimits: duplicate \(r.type)") }
            seen.append(r.type)
            if r.soft > r.hard { throw SkiffError.msg("config: process.rlimits: \(r.type) soft limit \(r.soft) exceeds hard limit \(r.hard)") }
        }
        if let adj = p.oomScoreAdj, adj < -1000 || adj > 1000 {
            throw SkiffError.msg("config: process.oomScoreAdj \(adj) is outside -1000..1000")
        }
        for e in p.env ?? [] where !e.contains("=") {
            throw SkiffError.msg("config: process.env entry \(quote(e)) is not KEY=VALUE")
        }
    }

    public static func validateLinux(_ l: Linux, spec: Spec) throws {
        // What skiff does not apply is refused, not ignored: a container must not run without a
        // cache or bandwidth partition, or in another execution domain, that its config asked for.
        if let rdt = l.intelRdt, rdt.asksForSomething {
            throw SkiffError.msg(
                "config: linux.intelRdt is not supported", hint: "skiff has no Intel RDT (resctrl) support; `skiff features` says intelRdt is disabled")
        }
        if let p = l.personality, p.domain != "LINUX" || !(p.flags ?? []).isEmpty {
            throw SkiffError.msg(
                "config: linux.personality \(quote(p.domain))\((p.flags ?? []).isEmpty ? "" : " with flags") is not supported",
                hint: "only the host's own domain, LINUX, without flags")
        }
        var kinds = Set<String>()
        for ns in l.namespaces ?? [] {
            guard NamespaceKind(rawValue: ns.type) != nil else {
                throw SkiffError.msg("config: linux.namespaces: unknown namespace type \(quote(ns.type))")
            }
            if !kinds.insert(ns.type).inserted { throw SkiffError.msg("config: linux.namespaces: duplicate \(ns.type)") }
            if let p = ns.path { try requireAbsolute(p, "linux.namespaces[\(ns.type)].path") }
        }
        let newUserns = (l.namespaces ?? []).contains { $0.type == "user" && $0.path == nil }
        if newUserns && ((l.uidMappings ?? []).isEmpty || (l.gidMappings ?? []).isEmpty) {
            throw SkiffError.msg("config: a new user namespace needs linux.uidMappings and linux.gidMappings")
        }
        if !kinds.contains("user") && (!(l.uidMappings ?? []).isEmpty || !(l.gidMappings ?? []).isEmpty) {
            throw SkiffError.msg("config: linux.uidMappings/gidMappings are set but there is no user namespace")
        }
        for (name, maps) in [("uidMappings", l.uidMappings ?? []), ("gidMappings", l.gidMappings ?? [])] {
            for m in maps
            where m.size == 0 || UInt64(m.containerID) + UInt64(m.size) > 1 << 32
                || UInt64(m.hostID) + UInt64(m.size) > 1 << 32
            {
                throw SkiffError.msg("config: linux.\(name): mapping \(m.containerID) \(m.hostID) \(m.size) is empty or runs past 4294967295")
            }
        }
        if l.timeOffsets != nil && !kinds.contains("time") {
            throw SkiffError.msg("config: linux.timeOffsets needs a time namespace")
        }
        for k in (l.timeOffsets ?? [:]).keys where k != "monotonic" && k != "boottime" {
            throw SkiffError.msg("config: linux.timeOffsets: unknown clock \(quote(k))")
        }
        if (spec.hostname.map { !$0.isEmpty } ?? false) && !kinds.contains("uts") {
            throw SkiffError.msg("config: hostname is set but there is no new uts namespace")
        }
        for d in l.devices ?? [] {
            try requireAbsolute(d.path, "linux.devices[].path")
            if let u = d.uid { try checkID(u, "linux.devices[\(quote(d.path))].uid") }
            if let g = d.gid { try checkID(g, "linux.devices[\(quote(d.path))].gid") }
            guard ["c", "b", "u", "p"].contains(d.type) else {
                throw SkiffError.msg("config: linux.devices \(quote(d.path)): unknown type \(quote(d.type))")
            }
            if d.type != "p" && (d.major == nil || d.minor == nil) {
                throw SkiffError.msg("config: linux.devices \(quote(d.path)): major and minor are required")
            }
            // mknod takes 32-bit numbers: 2^32+1 would make a 1:1 node (/dev/mem).
            for (name, v) in [("major", d.major), ("minor", d.minor)] {
                if let v, v < 0 || v > Int64(UInt32.max) {
                    throw SkiffError.msg("config: linux.devices \(quote(d.path)): \(name) \(v) is not a device number (0 to \(UInt32.max))")
                }
            }
        }
        for p in (l.maskedPaths ?? []) + (l.readonlyPaths ?? []) { try requireAbsolute(p, "linux.maskedPaths/readonlyPaths") }
        if let prop = l.rootfsPropagation, !prop.isEmpty,
            !["shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"].contains(prop)
        {
            throw SkiffError.msg("config: linux.rootfsPropagation: unknown value \(quote(prop))")
        }
        if let sc = l.seccomp { try validateSeccomp(sc) }
        if let devs = l.netDevices, !devs.isEmpty {
            guard (l.namespaces ?? []).contains(where: { $0.type == "network" }) else {
                throw SkiffError.msg("config: linux.netDevices needs a network namespace of the container's")
            }
            var names = Set<String>()
            for (host, d) in devs {
                let inside = d.name ?? host
                for n in [host, inside]
                where n.isEmpty || n.utf8.count > 15 || n == "." || n == ".."
                    || n.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 >= 0x7f })
                {
                    throw SkiffError.msg("config: linux.netDevices: invalid interface name \(quote(n))")
                }
                if !names.insert(inside).inserted { throw SkiffError.msg("config: linux.netDevices: two devices named \(quote(inside))") }
            }
        }
        if !kinds.contains("mount") {
            // The runtime's mount namespace is inherited (runtime-spec): nothing may be mounted
            // in it for the container; the process is only chroot'ed into the rootfs.
            if !(l.maskedPaths ?? []).isEmpty || !(l.readonlyPaths ?? []).isEmpty {
                throw SkiffError.msg(
                    "unable to restrict sys entries without a private MNT namespace",
                    hint: "add a mount namespace, or drop linux.maskedPaths and linux.readonlyPaths")
            }
            if !(spec.mounts ?? []).isEmpty {
                throw SkiffError.msg(
                    "config: mounts need a private mount namespace (they would be made in the host's)",
                    hint: "add {\"type\": \"mount\"} to linux.namespaces, or drop the mounts")
            }
            if spec.root?.readonly == true {
                throw SkiffError.msg("config: root.readonly needs a private mount namespace")
            }
        }
        for key in (l.sysctl ?? [:]).keys.sorted() {
            if key.contains("..") || key.hasPrefix("/") || key.hasPrefix(".") { throw SkiffError.msg("config: linux.sysctl: invalid key \(quote(key))") }
            try validateSysctl(key, l)
        }
    }

    static let ipcSysctls: Set<String> = [
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"
    ]

    /// Only sysctls that belong to a namespace the container has of its own (runc's rule): a
    /// global one (kernel.core_pattern...) would change the host.
    /// The namespace a namespaced sysctl belongs to ("ipc", "network", "uts"), nil for a global one.
    public static func sysctlNamespace(_ key: String) -> String? {
        let k = key.replacing("/", with: ".")
        if ipcSysctls.contains(k) || k.hasPrefix("fs.mqueue.") { return "ipc" }
        if k.hasPrefix("net.") { return "network" }
        if k == "kernel.domainname" || k == "kernel.hostname" { return "uts" }
        return nil
    }

    static func validateSysctl(_ key: String, _ l: Linux) throws {
        let k = key.replacing("/", with: ".")
        // A namespace joined by path passes here; the init checks, on the opened fd, that it is
        // not the host's (runc checks net only; ipc and uts would change the host just as well).
        func own(_ type: String) -> Bool { (l.namespaces ?? []).contains { $0.type == type && ($0.path ?? "").isEmpty } }
        func joined(_ type: String) -> Bool { (l.namespaces ?? []).contains { $0.type == type && !($0.path ?? "").isEmpty } }
        if ipcSysctls.contains(k) || k.hasPrefix("fs.mqueue.") {
            if own("ipc") || joined("ipc") { return }
            throw SkiffError.msg("config: sysctl \(quote(key)) is not allowed in the hosts ipc namespace")
        }
        if k.hasPrefix("net.") {
            if own("network") || joined("network") { return }
            throw SkiffError.msg("config: sysctl \(quote(key)) is not allowed in the hosts network namespace")
        }
        if own("uts") || joined("uts") {
            if k == "kernel.domainname" { return }
            if k == "kernel.hostname" { throw SkiffError.msg("config: sysctl \(quote(key)) is not allowed as it conflicts with the OCI \"hostname\" field") }
        }
        throw SkiffError.msg(
            "config: sysctl \(quote(key)) is not in a separate kernel namespace",
            hint: "it would change the host; only ipc (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*), net.* and kernel.domainname are allowed")
    }

    /// SCMP_ACT_NOTIFY needs an agent to hand the notify fd to, and may not trap what the runtime
    /// itself still does under the filter (it reports through write(2)): as in runc.
    static func validateSeccomp(_ sc: Seccomp) throws {
        if sc.defaultAction == "SCMP_ACT_NOTIFY" {
            throw SkiffError.msg("config: linux.seccomp: SCMP_ACT_NOTIFY cannot be the default action")
        }
        let notify = (sc.syscalls ?? []).filter { $0.action == "SCMP_ACT_NOTIFY" }
        guard !notify.isEmpty else { return }
        if (sc.listenerPath ?? "").isEmpty {
            throw SkiffError.msg("config: linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath", hint: "the path of the seccomp agent's socket")
        }
        if notify.contains(where: { $0.names.contains("write") }) {
            throw SkiffError.msg(
                "config: linux.seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall",
                hint: "the runtime reports the container's setup with write(2) under the filter")
        }
    }

    static func requireAbsolute(_ p: String, _ field: String) throws {
        if !p.hasPrefix("/") {
            throw SkiffError.msg("config: \(field) \(quote(p)) is not an absolute path")
        }
    }
}

import Glibc

/// `skiff spec`: the same starting point runc writes, with skiff's hostname.
public enum DefaultSpec {
    public static func make(rootless: Bool) -> Spec {
        var s = Spec(ociVersion: Spec.version)
        let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        var p = Process(args: ["sh"], env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"], cwd: "/")
        p.terminal = true
        var c = Capabilities()
        c.bounding = caps; c.effective = caps; c.permitted = caps; c.ambient = caps
        p.capabilities = c
        p.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)]
        p.noNewPrivileges = true
        s.process = p
        s.root = Root(path: "rootfs", readonly: true)
        s.hostname = "skiff"
        s.mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc", options: nil),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(
                destination: "/dev/pts", type: "devpts", source: "devpts",
                options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + (rootless ? [] : ["gid=5"])),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            rootless
                ? Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
                : Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"])
        ]
        var l = Linux()
        var ns = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map { Namespace(type: $0) }
        if rootless {
            ns.removeAll { $0.type == "network" }
            ns.append(Namespace(type: "user"))
            // The caller's own ids, as runc's spec --rootless: what an unprivileged user may map.
            l.uidMappings = [IDMapping(containerID: 0, hostID: UInt32(geteuid()), size: 1)]
            l.gidMappings = [IDMapping(containerID: 0, hostID: UInt32(getegid()), size: 1)]
        } else {
            var r = Resources()
            r.devices = [DeviceRule(allow: false, type: nil, major: nil, minor: nil, access: "rwm")]
            l.resources = r
        }
        l.namespaces = ns
        l.maskedPaths = [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
        ]
        l.readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        s.linux = l
        return s
    }
}

import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec

/// Builds the container's filesystem view inside its (new) mount namespace. Runs in the container
/// init before pivot_root; every mount target is resolved inside the rootfs (no symlink escape).
public struct Rootfs {
    public let rootfs: String
    public let spec: Spec
    /// In a new user namespace mknod is not allowed: devices are bind-mounted from the host.
    public let inUserNamespace: Bool
    /// Whether the container has its own cgroup namespace (cgroup2 can be mounted fresh).
    public let ownCgroupNamespace: Bool
    public let hostCgroupDir: String?

    public init(rootfs: String, spec: Spec, inUserNamespace: Bool, ownCgroupNamespace: Bool, hostCgroupDir: String?) {
        self.rootfs = rootfs; self.spec = spec; self.inUserNamespace = inUserNamespace
        self.ownCgroupNamespace = ownCgroupNamespace; self.hostCgroupDir = hostCgroupDir
    }

    var propagationFlags: UInt? {
        guard let p = spec.linux?.rootfsPropagation, !p.isEmpty else { return nil }
        return (try? MountOptions.parse([p]))?.propagation.first
    }

    // MARK: before hooks

    /// Propagation, the rootfs bind, the config's mounts, /dev.
    public func prepare() throws {
        // Keep container mounts from leaking back to the host (and host mounts from propagating in,
        // unless asked for): rslave by default, like runc.
        let rootProp = propagationFlags ?? (MountOptions.SLAVE | MountOptions.REC)
        try Sys.mount(nil, "/", nil, rootProp, nil)
        // pivot_root refuses a shared parent mount.
        try makeParentPrivate()
        try Sys.mount(rootfs, rootfs, "bind", MountOptions.BIND | MountOptions.REC, nil)

        let mounts = spec.mounts ?? []
        for m in mounts { try withContext("mount \(quote(m.destination))") { try mountOne(m) } }
        let devIsBind = mounts.contains { m in
            m.destination == "/dev" && (m.type == "bind" || (m.options ?? []).contains { $0 == "bind" || $0 == "rbind" })
        }
        if !devIsBind {
            try withContext("create devices") { try createDevices() }
            try createDevSymlinks(mounts: mounts)
        }
    }

    func makeParentPrivate() throws {
        // Find the mount containing rootfs and make it private if it is shared.
        guard let mi = try? FS.readString("/proc/self/mountinfo") else { return }
        var best: (String, Bool)? = nil
        for line in mi.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 6 else { continue }
            let mp = String(f[4])
            guard rootfs == mp || rootfs.hasPrefix(mp == "/" ? "/" : mp + "/") else { continue }
            if best == nil || mp.count >= best!.0.count {
                best = (mp, f[6...].prefix(while: { $0 != "-" }).contains { $0.hasPrefix("shared:") })
            }
        }
        if let (mp, shared) = best, shared { try Sys.mount(nil, mp, nil, MountOptions.PRIVATE, nil) }
    }

    func mountOne(_ m: Mount) throws {
        let opts = try MountOptions.parse(m.options ?? [], destination: m.destination)
        var type = m.type ?? ""
        let isBind = type == "bind" || opts.isBind
        if isBind { type = "bind" }
        let source = m.source ?? ""

        // The target's kind follows the source for binds (file over file, dir over dir).
        var targetIsDir = true
        var hostSource = source
        if isBind {
            if !source.hasPrefix("/") { hostSource = FS.absolute(source, base: FS.dirname(rootfs)) }
            guard let st = FS.fileStat(hostSource) else { throw SkiffError.sys("stat bind source", hostSource) }
            targetIsDir = (st.st_mode & S_IFMT) == S_IFDIR
        }
        let target = try prepareTarget(m.destination, directory: targetIsDir)

        switch type {
        case "bind":
            try Sys.mount(hostSource, target, "bind", MountOptions.BIND | (opts.flags & MountOptions.REC), nil)
            let extra = opts.flags & ~(MountOptions.BIND | MountOptions.REC)
            if extra != 0 {
                try Sys.mount(hostSource, target, nil, extra | MountOptions.BIND | MountOptions.REMOUNT | lockedFlags(target), nil)
            }
        case "cgroup", "cgroup2":
            try mountCgroup(target: target, flags: opts.flags)
        case "sysfs":
            do {
                try Sys.mount(source.isEmpty ? "sysfs" : source, target, "sysfs", opts.flags, opts.dataString)
            } catch let e as SkiffError where e.errno == EPERM && inUserNamespace {
                // Without its own network namespace, a user namespace may not mount sysfs: bind the host's.
                try Sys.mount("/sys", target, "bind", MountOptions.BIND | MountOptions.REC, nil)
                try? Sys.mount("/sys", target, nil, opts.flags | MountOptions.BIND | MountOptions.REMOUNT | lockedFlags(target), nil)
            }
        case "mqueue":
            do {
                try Sys.mount(source.isEmpty ? "mqueue" : source, target, "mqueue", opts.flags, opts.dataString)
            } catch let e as SkiffError where e.errno == EPERM && inUserNamespace {
                try Sys.mount("/dev/mqueue", target, "bind", MountOptions.BIND | MountOptions.REC, nil)
            }
        default:
            if type.isEmpty { throw SkiffError.msg("mount \(quote(m.destination)) has no type", hint: "set \"type\", or use the bind option") }
            try Sys.mount(source.isEmpty ? type : source, target, type, opts.flags & ~MountOptions.REMOUNT, opts.dataString)
        }
        for p in opts.propagation { try Sys.mount(nil, target, nil, p, nil) }
    }

    func mountCgroup(target: String, flags: UInt) throws {
        if ownCgroupNamespace {
            do {
                try Sys.mount("cgroup2", target, "cgroup2", flags, nil)
                return
            } catch let e as SkiffError where e.errno == EPERM || e.errno == EBUSY {
                _ = e // fall through to the bind below
            }
        }
        // Without a cgroup namespace the container sees its own cgroup directory only.
        guard let dir = hostCgroupDir, FS.isDirectory(dir) else { return }
        try Sys.mount(dir, target, "bind", MountOptions.BIND | MountOptions.REC, nil)
        if flags != 0 { try Sys.mount(dir, target, nil, flags | MountOptions.BIND | MountOptions.REMOUNT | lockedFlags(target), nil) }
    }

    /// Resolves `destination` inside the rootfs (symlinks followed as if the rootfs were "/"),
    /// creates it as a directory or empty file, and returns the host path to mount on.
    func prepareTarget(_ destination: String, directory: Bool) throws -> String {
        let inRoot = try SecurePath.resolveInRoot(root: rootfs, destination)
        if directory {
            _ = try SecurePath.mkdirAll(root: rootfs, inRoot)
        } else {
            _ = try SecurePath.mkdirAll(root: rootfs, FS.dirname(inRoot))
            try FS.createFileIfMissing(rootfs + inRoot, mode: 0o644)
        }
        return rootfs + (inRoot == "/" ? "" : inRoot)
    }

    /// Flags a bind remount must keep (a user namespace cannot clear locked nosuid/nodev/ro...).
    func lockedFlags(_ path: String) -> UInt {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        let f = UInt(s.f_flag)
        var out: UInt = 0
        if f & 1 != 0 { out |= MountOptions.RDONLY }
        if f & 2 != 0 { out |= MountOptions.NOSUID }
        if f & 4 != 0 { out |= MountOptions.NODEV }
        if f & 8 != 0 { out |= MountOptions.NOEXEC }
        if f & 1024 != 0 { out |= MountOptions.NOATIME }
        if f & 2048 != 0 { out |= MountOptions.NODIRATIME }
        if f & 4096 != 0 { out |= MountOptions.RELATIME }
        return out
    }

    // MARK: devices

    public static let defaultDevices: [Device] = [
        Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/full", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/random", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/urandom", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/tty", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0),
    ]

    func createDevices() throws {
        var devices = Rootfs.defaultDevices
        for d in spec.linux?.devices ?? [] {
            devices.removeAll { $0.path == d.path }
            devices.append(d)
        }
        for d in devices { try withContext("device \(quote(d.path))") { try createDevice(d) } }
    }

    func createDevice(_ d: Device) throws {
        let inRoot = try SecurePath.resolveInRoot(root: rootfs, d.path)
        _ = try SecurePath.mkdirAll(root: rootfs, FS.dirname(inRoot))
        let host = rootfs + inRoot
        if inUserNamespace {
            // mknod is refused in a user namespace: bind the host node (as runc does).
            try FS.createFileIfMissing(host, mode: 0o666)
            try Sys.mount(d.path, host, "bind", MountOptions.BIND, nil)
            return
        }
        var kind: mode_t
        switch d.type {
        case "c", "u": kind = S_IFCHR
        case "b": kind = S_IFBLK
        default: kind = S_IFIFO
        }
        let perm = mode_t(d.fileMode ?? 0o666) & 0o7777
        let dev = skiff_makedev(UInt32(truncatingIfNeeded: d.major ?? 0), UInt32(truncatingIfNeeded: d.minor ?? 0))
        unlink(host)
        if mknod(host, kind | perm, dev) != 0 { throw SkiffError.sys("mknod", host) }
        if chmod(host, perm) != 0 { throw SkiffError.sys("chmod", host) }
        if lchown(host, d.uid ?? 0, d.gid ?? 0) != 0 { throw SkiffError.sys("chown", host) }
    }

    func createDevSymlinks(mounts: [Mount]) throws {
        var links: [(String, String)] = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                                         ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
        if FS.exists(rootfs + "/proc/kcore") || mounts.contains(where: { $0.destination == "/proc" }) {
            links.append(("/proc/kcore", "/dev/core"))
        }
        if mounts.contains(where: { $0.destination == "/dev/pts" }) { links.append(("pts/ptmx", "/dev/ptmx")) }
        for (target, link) in links {
            let host = try SecurePath.resolve(root: rootfs, FS.dirname(link)) + "/" + FS.basename(link)
            if FS.linkStat(host) != nil { continue }
            if symlink(target, host) != 0 && errno != EEXIST { throw SkiffError.sys("symlink", host) }
        }
    }

    // MARK: after hooks

    /// Applies rootfsPropagation to the new root, then switches to it.
    public func pivot(noPivot: Bool) throws {
        if let p = propagationFlags { try Sys.mount(nil, rootfs, nil, p, nil) }
        if chdir(rootfs) != 0 { throw SkiffError.sys("chdir", rootfs) }
        if noPivot {
            try Sys.mount(rootfs, "/", nil, UInt(MS_MOVE), nil)
            if chroot(".") != 0 { throw SkiffError.sys("chroot", rootfs) }
            if chdir("/") != 0 { throw SkiffError.sys("chdir", "/") }
            return
        }
        // pivot_root(".", ".") stacks the old root on top of the new one; detach it right away.
        let oldRoot = try FS.open("/", O_DIRECTORY | O_RDONLY)
        defer { close(oldRoot) }
        try Sys.pivotRoot(".", ".")
        if fchdir(oldRoot) != 0 { throw SkiffError.sys("fchdir", "old root") }
        // Make the old root's mounts slave so the detach does not propagate to the host.
        try Sys.mount(nil, ".", nil, MountOptions.SLAVE | MountOptions.REC, nil)
        try Sys.umount(".", flags: SKIFF_MNT_DETACH)
        if chdir("/") != 0 { throw SkiffError.sys("chdir", "/") }
    }

    /// Masked and read-only paths, then a read-only root. Runs after pivot_root.
    public func finalize() throws {
        for p in spec.linux?.readonlyPaths ?? [] { try withContext("readonly path \(quote(p))") { try readonlyPath(p) } }
        for p in spec.linux?.maskedPaths ?? [] { try withContext("masked path \(quote(p))") { try maskPath(p) } }
        if spec.root?.readonly == true {
            try Sys.mount(nil, "/", nil, MountOptions.BIND | MountOptions.REMOUNT | MountOptions.RDONLY | lockedFlags("/"), nil)
        }
    }

    func readonlyPath(_ p: String) throws {
        guard FS.linkStat(p) != nil else { return }
        try Sys.mount(p, p, nil, MountOptions.BIND | MountOptions.REC, nil)
        try Sys.mount(p, p, nil, MountOptions.BIND | MountOptions.REMOUNT | MountOptions.RDONLY | lockedFlags(p), nil)
    }

    func maskPath(_ p: String) throws {
        guard let st = FS.fileStat(p) else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            try Sys.mount("tmpfs", p, "tmpfs", MountOptions.RDONLY, nil)
        } else {
            try Sys.mount("/dev/null", p, nil, MountOptions.BIND, nil)
        }
    }
}

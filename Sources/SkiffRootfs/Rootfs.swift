import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec

/// Builds the container's filesystem view inside its (new) mount namespace. Runs in the container
/// init. Every target is resolved once, inside the rootfs, by the kernel (`InRoot`), and every
/// mount is made on the descriptor that resolution returned (`MountFD`): a writer racing us in
/// the rootfs (a shared volume, a neighbour) cannot move a mount, a mask or a device node outside.
public struct Rootfs {
    public let rootfs: String
    public let spec: Spec
    /// In a new user namespace mknod is not allowed: devices are bind-mounted from the host.
    public let inUserNamespace: Bool
    /// Whether the container has its own cgroup namespace (cgroup2 can be mounted fresh).
    public let ownCgroupNamespace: Bool
    public let hostCgroupDir: String?
    /// The rootfs and bind sources as O_PATH fds in our mount namespace, opened for us with the
    /// caller's credentials when we are in a new user namespace: a source only the caller can
    /// reach (a 0700 directory of root's, the store's bundles) still mounts. nil: we open them.
    public var opened: OpenedPaths?
    /// The rootfs mount, once `prepare` made it; every path below is resolved inside it.
    public private(set) var rootFd: Int32 = -1
    /// A tmpfs /dev asked to be read-only: it is filled first and made read-only at the end.
    var readonlyDev: Int32 = -1
    /// Where the mount and mknod calls go (the kernel; a recorder in tests).
    public var calls: MountCalls = KernelMounts()

    public init(rootfs: String, spec: Spec, inUserNamespace: Bool, ownCgroupNamespace: Bool, hostCgroupDir: String?) {
        self.rootfs = rootfs; self.spec = spec; self.inUserNamespace = inUserNamespace
        self.ownCgroupNamespace = ownCgroupNamespace; self.hostCgroupDir = hostCgroupDir
    }

    /// linux.rootfsPropagation as mount(2) flags.
    var requestedPropagation: UInt? {
        guard let p = spec.linux?.rootfsPropagation, !p.isEmpty else { return nil }
        return (try? MountOptions.parse([p]))?.propagation.first
    }

    // MARK: before hooks

    /// Propagation, the rootfs bind, the config's mounts, /dev.
    public mutating func prepare() throws {
        // Keep container mounts from leaking back to the host (and host mounts from propagating in,
        // unless asked for): rslave by default, like runc. Unbindable waits until the rootfs is
        // bound onto itself (an unbindable source cannot be bound), shared until after pivot_root.
        var rootProp = MountOptions.SLAVE | MountOptions.REC
        if let p = requestedPropagation, p & MountOptions.UNBINDABLE == 0 { rootProp = p }
        try calls.mount(nil, "/", nil, rootProp, nil)
        let (tree, target) = try openRootfs()
        defer { close(target) }
        do {
            // pivot_root refuses a shared parent mount, and a shared new root. After a recursive
            // slave or private "/" no mount is shared, and mountinfo need not be read.
            if rootProp & MountOptions.REC == 0 || rootProp & MountOptions.SHARED != 0 { try makeParentPrivate() }
            try calls.attach(tree, to: target, what: rootfs)
            // Slave leaves a private or slave mount as it is and turns a shared one into a slave of
            // its peers (it still receives their mounts); submounts keep their own propagation.
            try calls.setAttributes(tree, set: 0, clear: 0, propagation: UInt64(MountOptions.SLAVE), recursive: false, what: rootfs)
        } catch { close(tree); throw error }
        rootFd = tree

        let mounts = spec.mounts ?? []
        for (i, m) in mounts.enumerated() { try withContext("mount \(quote(m.destination))") { try mountOne(m, index: i) } }
        let devIsBind = mounts.contains { FS.clean($0.destination) == "/dev" && Rootfs.isBind($0) }
        if !devIsBind {
            try withContext("create devices") { try createDevices() }
            try createDevSymlinks(mounts: mounts)
        }
    }

    /// The rootfs as a detached recursive copy, and the directory it will be attached on.
    func openRootfs() throws -> (tree: Int32, target: Int32) {
        let target = opened.map { dup($0.rootfs) } ?? Glibc.open(rootfs, InRoot.oPath | O_DIRECTORY | O_CLOEXEC)
        if target < 0 { throw SkiffError.sys("open", rootfs) }
        do { return (try calls.cloneTree(target, recursive: true, what: rootfs), target) } catch { close(target); throw error }
    }

    /// The mount the rootfs directory lies on (its parent mount) must not be shared.
    func makeParentPrivate() throws {
        // Find the mount containing rootfs and make it private if it is shared.
        guard let mi = try? FS.readString("/proc/self/mountinfo") else { return }
        var best: (String, Bool)? = nil
        for line in splitASCII(mi, UInt8(ascii: "\n")) {
            let f = splitASCII(line, UInt8(ascii: " "))
            guard f.count > 6 else { continue }
            let mp = String(f[4])
            guard rootfs == mp || rootfs.hasPrefix(mp == "/" ? "/" : mp + "/") else { continue }
            if best == nil || mp.count >= best!.0.count {
                best = (mp, f[6...].prefix(while: { $0 != "-" }).contains { $0.hasPrefix("shared:") })
            }
        }
        // By its mount point: mount_setattr only takes a mount's root, and `target` lies inside it.
        if let (mp, shared) = best, shared { try calls.mount(nil, mp, nil, MountOptions.PRIVATE, nil) }
    }

    /// A detached copy of a bind source with the mount's flags applied, as runc's bind + remount
    /// leaves it: when flags beyond bind/rbind are given, exactly those are set (a flag the
    /// source has but the options do not name is cleared, unless the kernel has locked it).
    func bindTree(_ m: Mount, index: Int) throws -> Int32 {
        let opts = try MountOptions.parse(m.options ?? [], destination: m.destination)
        let source = Rootfs.hostSource(m, rootfs: rootfs)
        let opened = self.opened?.sources[index]
        let tree = try calls.cloneTree(opened ?? AT_FDCWD, opened == nil ? source : "", recursive: opts.isRecursiveBind, what: source)
        do {
            let flags = opts.flags & ~(MountOptions.BIND | MountOptions.REC | MountOptions.REMOUNT)
            if flags != 0 {
                let set = MountFD.attributes(fromFlags: flags)
                var clear =
                    MountFD.attributes(
                        fromFlags: MountOptions.RDONLY | MountOptions.NOSUID | MountOptions.NODEV
                            | MountOptions.NOEXEC | MountOptions.NODIRATIME | MountOptions.NOSYMFOLLOW) & ~set
                clear |= SKIFF_MOUNT_ATTR__ATIME  // a remount without an atime option means relatime
                do {
                    try calls.setAttributes(tree, set: set, clear: clear, recursive: false, what: source)
                } catch let e as SkiffError where e.errno == EPERM {
                    // Flags locked by the source (a user namespace may not clear them) stay set.
                    try calls.setAttributes(tree, set: set, clear: clear & ~Rootfs.currentAttributes(tree), recursive: false, what: source)
                }
            }
        } catch { close(tree); throw error }
        return tree
    }

    /// O_PATH fds of the rootfs and of the bind sources (index in spec.mounts → fd).
    public struct OpenedPaths {
        public var rootfs: Int32
        public var sources: [Int: Int32]
        public init(rootfs: Int32, sources: [Int: Int32]) { self.rootfs = rootfs; self.sources = sources }
    }

    /// Whether a config mount is a bind (by type or by option), as mountOne decides it.
    public static func isBind(_ m: Mount) -> Bool {
        m.type == "bind" || (m.options ?? []).contains { $0 == "bind" || $0 == "rbind" }
    }

    /// A bind source as a host path (a relative one is taken from the bundle, like runc).
    public static func hostSource(_ m: Mount, rootfs: String) -> String {
        let source = m.source ?? ""
        return source.hasPrefix("/") ? source : FS.absolute(source, base: FS.dirname(rootfs))
    }

    /// The mount attributes the mount at `fd` has now.
    static func currentAttributes(_ fd: Int32) -> UInt64 {
        var s = statvfs()
        guard fstatvfs(fd, &s) == 0 else { return 0 }
        let f = UInt(s.f_flag)
        var flags: UInt = 0
        for (st, ms) in [
            (1, MountOptions.RDONLY), (2, MountOptions.NOSUID), (4, MountOptions.NODEV), (8, MountOptions.NOEXEC),
            (1024, MountOptions.NOATIME), (2048, MountOptions.NODIRATIME)
        ] where f & UInt(st) != 0 {
            flags |= ms
        }
        var attrs = MountFD.attributes(fromFlags: flags)
        if f & 1024 != 0 || f & 4096 == 0 { attrs |= SKIFF_MOUNT_ATTR__ATIME }  // not relatime: keep the atime mode
        return attrs
    }

    mutating func mountOne(_ m: Mount, index: Int) throws {
        let opts = try MountOptions.parse(m.options ?? [], destination: m.destination)
        var type = m.type ?? ""
        if Rootfs.isBind(m) { type = "bind" }
        let source = m.source ?? ""

        var mounted: Int32
        switch type {
        case "bind":
            let tree = try bindTree(m, index: index)
            mounted = tree
            do {
                // The target's kind follows the source (file over file, directory over directory).
                var st = Glibc.stat()
                if fstat(tree, &st) != 0 { throw SkiffError.sys("stat bind source", Rootfs.hostSource(m, rootfs: rootfs)) }
                try attach(tree, at: m.destination, directory: (st.st_mode & S_IFMT) == S_IFDIR)
            } catch { close(tree); throw error }
        case "cgroup", "cgroup2":
            guard let fd = try mountCgroup(m.destination, source: source.isEmpty ? "cgroup" : source, flags: opts.flags) else { return }
            mounted = fd
        default:
            if type.isEmpty { throw SkiffError.msg("mount \(quote(m.destination)) has no type", hint: "set \"type\", or use the bind option") }
            // A read-only tmpfs /dev is filled first (devices, /dev/pts, symlinks), then made read-only.
            var flags = opts.flags & ~MountOptions.REMOUNT
            let deferReadonly = FS.clean(m.destination) == "/dev" && flags & MountOptions.RDONLY != 0
            if deferReadonly { flags &= ~MountOptions.RDONLY }
            // linux.mountLabel as runc passes it: context= on every filesystem but proc and sysfs.
            var data = opts.data
            if let label = spec.linux?.mountLabel, !label.isEmpty, type != "proc", type != "sysfs" { data.append("context=\"\(label)\"") }
            mounted = try mountFilesystem(
                type: type, source: source.isEmpty ? type : source, flags: flags,
                data: data, destination: m.destination)
            if deferReadonly { readonlyDev = dup(mounted) }
        }
        defer { close(mounted) }
        // rro, rnosuid, ...: the whole tree (runc, mount_setattr with AT_RECURSIVE).
        try calls.setAttributes(mounted, set: opts.recursiveSet, clear: opts.recursiveClear, recursive: true, what: m.destination)
        for p in opts.propagation {
            let (prop, rec) = MountFD.propagation(p)
            try calls.setAttributes(mounted, set: 0, clear: 0, propagation: prop, recursive: rec, what: m.destination)
        }
    }

    /// A new filesystem instance on `destination`; returns the attached mount.
    func mountFilesystem(type: String, source: String, flags: UInt, data: [String], destination: String) throws -> Int32 {
        // procfs and sysfs only on an ordinary directory: a symlink on the way would put them
        // where masked paths and LSM rules do not look (CVE-2019-16884, CVE-2019-19921).
        let strict = type == "proc" || type == "sysfs"
        let target: Int32
        do { target = try InRoot.mkdirAll(rootFd, destination, noSymlinks: strict) } catch var e as SkiffError where strict && e.errno == ELOOP {
            e.hint = "filesystem \(quote(type)) must be mounted on an ordinary directory, not through a symlink"
            throw e
        }
        defer { close(target) }
        try refuseInsideProc(target, destination, mountIsProc: type == "proc")
        let mnt: Int32
        do {
            mnt = try calls.newFilesystem(
                type: type, source: source, options: data, superblockFlags: MountFD.superblockFlags(flags),
                attrs: MountFD.attributes(fromFlags: flags), what: destination)
        } catch let e as SkiffError where e.errno == EPERM && inUserNamespace && (type == "sysfs" || type == "mqueue") {
            // A user namespace without its own network (sysfs) or ipc (mqueue) namespace may not
            // mount a new instance: bind the host's, as runc does.
            let host = type == "sysfs" ? "/sys" : "/dev/mqueue"
            let tree = try calls.cloneTree(AT_FDCWD, host, recursive: true, what: host)
            do {
                try? calls.setAttributes(tree, set: MountFD.attributes(fromFlags: flags), clear: 0, recursive: false, what: host)
                try calls.attach(tree, to: target, what: destination)
            } catch { close(tree); throw error }
            _ = e
            return tree
        }
        do { try calls.attach(mnt, to: target, what: destination) } catch { close(mnt); throw error }
        return mnt
    }

    func mountCgroup(_ destination: String, source: String, flags: UInt) throws -> Int32? {
        if ownCgroupNamespace {
            do {
                return try mountFilesystem(type: "cgroup2", source: source, flags: flags, data: [], destination: destination)
            } catch let e as SkiffError where e.errno == EPERM || e.errno == EBUSY {
                _ = e  // fall through to the bind below
            }
        }
        // Without a cgroup namespace the container sees its own cgroup directory only.
        guard let dir = hostCgroupDir, FS.isDirectory(dir) else { return nil }
        let tree = try calls.cloneTree(AT_FDCWD, dir, recursive: true, what: dir)
        do {
            try calls.setAttributes(tree, set: MountFD.attributes(fromFlags: flags), clear: 0, recursive: false, what: dir)
            try attach(tree, at: destination, directory: true)
        } catch { close(tree); throw error }
        return tree
    }

    /// Attaches a detached mount on `destination` (created inside the rootfs as a directory or
    /// an empty file when missing).
    func attach(_ tree: Int32, at destination: String, directory: Bool) throws {
        let target = directory ? try InRoot.mkdirAll(rootFd, destination) : try InRoot.createFile(rootFd, destination)
        defer { close(target) }
        try refuseInsideProc(target, destination, mountIsProc: Rootfs.isProcfs(tree))
        try calls.attach(tree, to: target, what: destination)
    }

    /// The files lxcfs emulates: the only places under /proc a mount may go (runc's list).
    static let lxcfsProcFiles = [
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
        "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev"
    ]

    static func isProcfs(_ fd: Int32) -> Bool {
        skiff_fs_type(fd) == 0x9fa0  // PROC_SUPER_MAGIC
    }

    /// runc's checkProcMount, on the resolved target rather than the path: on procfs's root only
    /// procfs again, inside it only the lxcfs files. A symlink in the image (/dev -> /proc) can
    /// therefore not lay a tmpfs over /proc and, with it, over the masked paths.
    func refuseInsideProc(_ target: Int32, _ destination: String, mountIsProc: Bool) throws {
        guard Rootfs.isProcfs(target) else { return }
        var st = Glibc.stat()
        if fstat(target, &st) != 0 { throw SkiffError.sys("stat mount target", destination) }
        if st.st_ino == 1 {  // procfs's root directory
            if mountIsProc { return }
            throw SkiffError.msg(
                "mount \(quote(destination)): it resolves to /proc, where only a procfs may be mounted",
                hint: "is a directory on the way a symlink to /proc?")
        }
        for file in Rootfs.lxcfsProcFiles {
            let fd = InRoot.open(rootFd, file, noSymlinks: true)
            if fd < 0 { continue }
            var other = Glibc.stat()
            let same = fstat(fd, &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino
            close(fd)
            if same { return }
        }
        throw SkiffError.msg(
            "mount \(quote(destination)): it is inside /proc", hint: "only \(Rootfs.lxcfsProcFiles.joined(separator: ", ")) may be mounted over (lxcfs)")
    }

    // MARK: devices

    public static let defaultDevices: [Device] = [
        Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/full", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/random", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/urandom", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0),
        Device(type: "c", path: "/dev/tty", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0)
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
        if inUserNamespace { return try bindDevice(d) }
        var kind: mode_t
        switch d.type {
        case "c", "u": kind = S_IFCHR
        case "b": kind = S_IFBLK
        default: kind = S_IFIFO
        }
        let perm = mode_t(d.fileMode ?? 0o666) & 0o7777
        let dev = skiff_makedev(UInt32(truncatingIfNeeded: d.major ?? 0), UInt32(truncatingIfNeeded: d.minor ?? 0))
        let (parent, name) = try InRoot.parent(rootFd, d.path)
        defer { close(parent) }
        if unlinkat(parent, name, 0) != 0 && errno != ENOENT { throw SkiffError.sys("remove", d.path) }
        let old = umask(0)
        let r = calls.mknodat(parent, name, kind | perm, dev)
        umask(old)
        if r != 0 {
            // No CAP_MKNOD (a restricted caller): bind the host's node, as runc does.
            if errno == EPERM { return try bindDevice(d) }
            throw SkiffError.sys("mknod", d.path)
        }
        // Owner through an O_PATH handle on what we just made, checked to be that node: a name
        // swapped for a symlink in between is not followed.
        let node = retryEINTR { Glibc.openat(parent, name, InRoot.oPath | O_NOFOLLOW | O_CLOEXEC) }
        if node < 0 { throw SkiffError.sys("open", d.path) }
        defer { close(node) }
        var st = Glibc.stat()
        guard fstat(node, &st) == 0, st.st_mode & S_IFMT == kind, kind == S_IFIFO || st.st_rdev == dev else {
            throw SkiffError("mknod", d.path, detail: "the node was replaced while it was being created")
        }
        if fchownat(node, "", d.uid ?? 0, d.gid ?? 0, Int32(SKIFF_AT_EMPTY_PATH)) != 0 { throw SkiffError.sys("chown", d.path) }
    }

    /// mknod is refused in a user namespace: bind the host's node onto an empty file.
    func bindDevice(_ d: Device) throws {
        let tree = try calls.cloneTree(AT_FDCWD, d.path, recursive: false, what: d.path)
        defer { close(tree) }
        let target = try InRoot.createFile(rootFd, d.path, mode: 0o666)
        defer { close(target) }
        try calls.attach(tree, to: target, what: d.path)
    }

    func createDevSymlinks(mounts: [Mount]) throws {
        var links: [(String, String)] = [
            ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")
        ]
        // As runc: only where the kernel has /proc/kcore (CONFIG_PROC_KCORE); our /proc is still the host's here.
        if FS.exists("/proc/kcore") { links.append(("/proc/kcore", "/dev/core")) }
        if mounts.contains(where: { $0.destination == "/dev/pts" }) { links.append(("pts/ptmx", "/dev/ptmx")) }
        for (target, link) in links {
            let (parent, name) = try InRoot.parent(rootFd, link)
            defer { close(parent) }
            var st = Glibc.stat()
            if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { continue }
            if symlinkat(target, parent, name) != 0 && errno != EEXIST { throw SkiffError.sys("symlink", link) }
        }
    }

    // MARK: after hooks

    /// Switches to the rootfs, then applies rootfsPropagation to the new root (after the pivot:
    /// pivot_root refuses a shared mount, and a shared rootfs made earlier would propagate to the host).
    public func pivot(noPivot: Bool) throws {
        if fchdir(rootFd) != 0 { throw SkiffError.sys("chdir", rootfs) }
        if noPivot {
            try hideHostProcAndSys()
            try calls.mount(rootfs, "/", nil, UInt(MS_MOVE), nil)
            if chroot(".") != 0 { throw SkiffError.sys("chroot", rootfs) }
            if chdir("/") != 0 { throw SkiffError.sys("chdir", "/") }
        } else {
            // pivot_root(".", ".") stacks the old root on top of the new one; detach it right away.
            let oldRoot = try FS.open("/", O_DIRECTORY | O_RDONLY)
            defer { close(oldRoot) }
            try Sys.pivotRoot(".", ".")
            if fchdir(oldRoot) != 0 { throw SkiffError.sys("fchdir", "old root") }
            // Make the old root's mounts slave so the detach does not propagate to the host.
            try calls.mount(nil, ".", nil, MountOptions.SLAVE | MountOptions.REC, nil)
            try Sys.umount(".", flags: SKIFF_MNT_DETACH)
            if chdir("/") != 0 { throw SkiffError.sys("chdir", "/") }
        }
        // Private was made by makeParentPrivate already; unbindable waits for the end of
        // finalize, since the read-only paths, masks and console are binds of mounts under "/".
        if let p = requestedPropagation, p & (MountOptions.PRIVATE | MountOptions.UNBINDABLE) == 0 {
            try withContext("rootfsPropagation") { try calls.mount(nil, "/", nil, p, nil) }
        }
    }

    /// Without pivot_root the host's root stays in the mount namespace, reachable by nothing but
    /// the kernel's check for a fully visible procfs/sysfs: a nested user namespace could mount a
    /// fresh procfs over the masks because the host's /proc counts. Detach every full proc and
    /// sysfs mount outside the rootfs first (or cover it where that is refused), as runc does.
    func hideHostProcAndSys() throws {
        guard let mi = try? FS.readString("/proc/self/mountinfo") else { return }
        var points: [String] = []
        for line in mi.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard let dash = f.firstIndex(of: "-"), dash + 1 < f.count, f.count > 4 else { continue }
            let fstype = f[dash + 1], root = f[3], mp = unescapeMountinfo(String(f[4]))
            guard root == "/", fstype == "proc" || fstype == "sysfs", mp != rootfs, !mp.hasPrefix(rootfs + "/") else { continue }
            points.append(mp)
        }
        for p in points.sorted(by: { $0.count > $1.count }) {
            if Glibc.mount(nil, p, nil, MountOptions.SLAVE | MountOptions.REC, nil) != 0 {
                if errno == ENOENT || errno == EINVAL { continue }  // gone with a parent already
                throw SkiffError.sys("make slave", p)
            }
            if umount2(p, SKIFF_MNT_DETACH) != 0 {
                guard errno == EINVAL || errno == EPERM else { throw SkiffError.sys("umount", p) }
                try calls.mount("tmpfs", p, "tmpfs", 0, nil)
            }
        }
    }

    /// A read-only /dev and root, then read-only and masked paths: runc's order (a mask over a
    /// read-only /dev is itself read-only). Runs after pivot_root; paths are resolved inside the new root.
    public func finalize() throws {
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(root) }
        try finalize(root: root)
    }

    func finalize(root: Int32) throws {
        if readonlyDev >= 0 {
            try calls.setAttributes(readonlyDev, set: UInt64(SKIFF_MOUNT_ATTR_RDONLY), clear: 0, recursive: false, what: "/dev")
            close(readonlyDev)
        }
        if spec.root?.readonly == true {
            try calls.setAttributes(root, set: UInt64(SKIFF_MOUNT_ATTR_RDONLY), clear: 0, recursive: false, what: "/")
        }
        for p in spec.linux?.readonlyPaths ?? [] { try withContext("readonly path \(quote(p))") { try readonlyPath(root, p) } }
        if !(spec.linux?.maskedPaths ?? []).isEmpty {
            let null = try devNull(root)
            defer { close(null) }
            for p in spec.linux?.maskedPaths ?? [] { try withContext("masked path \(quote(p))") { try maskPath(root, p, null: null) } }
        }
        // Last: nothing can be bound from an unbindable mount (runbindable made every mount so
        // before the binds above, and they failed with EINVAL, as crun's do).
        if let p = requestedPropagation, p & MountOptions.UNBINDABLE != 0 {
            try withContext("rootfsPropagation") { try calls.mount(nil, "/", nil, p, nil) }
        }
    }

    /// Masked and read-only paths are looked up without following any symlink: one swapped in
    /// by a writer of a shared volume would point the protection somewhere else, leaving the
    /// path itself open. Such a path fails create (a missing one is skipped, as the spec says).
    static func openProtectedPath(_ root: Int32, _ p: String) throws -> Int32? {
        let fd = InRoot.open(root, p, noSymlinks: true)
        if fd >= 0 { return fd }
        if errno == ENOENT { return nil }
        var e = InRoot.error("open", p)
        if e.errno == ELOOP { e.hint = "masked and read-only paths may not go through a symlink" }
        throw e
    }

    func readonlyPath(_ root: Int32, _ p: String) throws {
        guard let target = try Rootfs.openProtectedPath(root, p) else { return }
        defer { close(target) }
        // runc: bind onto itself (with what is mounted below), then the top made read-only.
        let tree = try calls.cloneTree(target, recursive: true, what: p)
        defer { close(tree) }
        try calls.setAttributes(tree, set: UInt64(SKIFF_MOUNT_ATTR_RDONLY), clear: 0, recursive: false, what: p)
        try calls.attach(tree, to: target, what: p)
    }

    /// The container's /dev/null, checked to be the null device before anything is masked with it.
    func devNull(_ root: Int32) throws -> Int32 {
        let fd = try InRoot.openOrThrow(root, "/dev/null")
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFCHR, skiff_major(st.st_rdev) == 1, skiff_minor(st.st_rdev) == 3 else {
            close(fd)
            throw SkiffError("mask", "/dev/null", detail: "is not the null device (1:3)", hint: "masked files are covered with /dev/null")
        }
        return fd
    }

    func maskPath(_ root: Int32, _ p: String, null: Int32) throws {
        guard let target = try Rootfs.openProtectedPath(root, p) else { return }
        defer { close(target) }
        var st = Glibc.stat()
        if fstat(target, &st) != 0 { throw SkiffError.sys("stat", p) }
        let cover: Int32
        if (st.st_mode & S_IFMT) == S_IFDIR {
            cover = try calls.newFilesystem(
                type: "tmpfs", source: "tmpfs", options: [], superblockFlags: ["ro"],
                attrs: UInt64(SKIFF_MOUNT_ATTR_RDONLY), what: p)
        } else {
            cover = try calls.cloneTree(null, recursive: false, what: p)
        }
        defer { close(cover) }
        try calls.attach(cover, to: target, what: p)
    }

    /// Binds `source` (a path in the current root) onto `destination` inside it: the console.
    public static func bindInCurrentRoot(_ source: String, onto destination: String) throws {
        let root = try FS.open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(root) }
        let target = try InRoot.createFile(root, destination, mode: 0o600)
        defer { close(target) }
        let tree = try MountFD.cloneTree(AT_FDCWD, source, recursive: false, what: source)
        defer { close(tree) }
        try MountFD.attach(tree, to: target, what: destination)
    }
}

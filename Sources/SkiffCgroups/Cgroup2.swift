import Glibc
import SkiffSys

/// A container's cgroup v2 directory. Works on pure v2 hosts (`/sys/fs/cgroup`) and on hybrid hosts
/// (`/sys/fs/cgroup/unified`). All paths derive from `mountpoint`, so tests point it at a temp dir.
public struct Cgroup2: Sendable, Equatable {
    public let mountpoint: String
    /// Path inside the hierarchy, starting with "/".
    public let path: String

    /// A handle for an absolute cgroup directory recorded in state.
    public static func at(_ dir: String) -> Cgroup2 { Cgroup2(mountpoint: dir, path: "/") }

    public init(mountpoint: String, path: String) {
        self.mountpoint = mountpoint
        self.path = FS.clean(path)
    }

    public var directory: String { path == "/" ? mountpoint : mountpoint + path }

    /// A handle for a recorded absolute directory, split at the host's cgroup2 mountpoint when it
    /// lies below it (so controllers can be enabled along the path).
    public static func fromDirectory(_ dir: String) -> Cgroup2 {
        if let mp = hostMountpoint(), dir.hasPrefix(mp + "/") {
            return Cgroup2(mountpoint: mp, path: String(dir.dropFirst(mp.count)))
        }
        return Cgroup2(mountpoint: dir, path: "/")
    }

    /// The cgroup2 mountpoint from /proc/self/mountinfo (field 5 of the line whose fstype is cgroup2).
    public static func findMountpoint(mountinfo: String) -> String? {
        for line in splitASCII(mountinfo, UInt8(ascii: "\n")) {
            let fields = splitASCII(line, UInt8(ascii: " "))
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, dash >= 5,
                fields[dash + 1] == "cgroup2"
            else { continue }
            return unescapeMountinfo(String(fields[4]))
        }
        return nil
    }

    /// statfs f_type of a cgroup2 filesystem (CGROUP2_SUPER_MAGIC).
    public static let superMagic = 0x6367_7270

    public static func hostMountpoint() -> String? {
        // Where systemd and every distribution mount it, asked of the directory: one open instead
        // of reading all of mountinfo (~1% of a `run`).
        for mp in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where FS.filesystemType(ofDirectory: mp) == superMagic { return mp }
        guard let mi = try? FS.readString("/proc/self/mountinfo") else { return nil }
        return findMountpoint(mountinfo: mi)
    }

    /// "cgroup2" on pure v2 hosts, "hybrid" when v1 controllers are mounted too, "v1" without cgroup2.
    public static func hostMode() -> String {
        guard let mp = hostMountpoint() else { return "cgroup v1 only" }
        return mp == "/sys/fs/cgroup" ? "cgroup v2" : "hybrid (cgroup v2 at \(mp))"
    }

    /// The caller's own cgroup in the unified hierarchy ("0::/path" in /proc/self/cgroup).
    public static func ownPath(procSelfCgroup: String) -> String {
        for line in procSelfCgroup.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return "/"
    }

    /// Resolves `linux.cgroupsPath` as runc's fs2 manager does: absolute paths are taken from the
    /// hierarchy root, relative ones are joined to the runtime's own cgroup, empty means `/<id>`.
    /// With `systemd`, `slice:prefix:name` becomes `/<slice path>/<prefix>-<name>.scope`.
    public static func resolve(cgroupsPath: String?, id: String, systemd: Bool, own: String) throws -> String {
        let p = cgroupsPath ?? ""
        if systemd {
            let (unit, slice) = try Systemd.unit(cgroupsPath: cgroupsPath, id: id)
            if unit.hasSuffix(".slice") { return "/" + expandSlice(unit) }  // a slice's name holds its parents
            return FS.clean("/" + expandSlice(slice) + "/" + unit)
        }
        if p.isEmpty { return "/" + id }
        if p.contains(":") && !p.hasPrefix("/") {
            throw SkiffError.msg("cgroupsPath \(quote(p)) looks like a systemd path", hint: "pass --systemd-cgroup")
        }
        let joined = p.hasPrefix("/") ? p : own + "/" + p
        let clean = FS.clean(joined)
        if clean == "/" { throw SkiffError.msg("cgroupsPath \(quote(p)) resolves to the root cgroup") }
        return clean
    }

    /// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice` (systemd's nesting rule).
    static func expandSlice(_ slice: String) -> String {
        if slice == "-.slice" { return "" }  // the root slice is the hierarchy's root
        guard slice.hasSuffix(".slice") else { return slice }
        let name = slice.dropLast(6)
        var out: [String] = []
        var prefix = ""
        for part in name.split(separator: "-") {
            prefix = prefix.isEmpty ? String(part) : prefix + "-" + part
            out.append(prefix + ".slice")
        }
        return out.joined(separator: "/")
    }

    /// Creates the directory (and parents). Returns the topmost directory that did not exist,
    /// so `remove` can take back exactly what `create` made.
    @discardableResult
    public func create() throws -> String? {
        var firstCreated: String?
        var cur = mountpoint
        for comp in splitASCII(path, UInt8(ascii: "/")) {
            cur += "/"
            cur += String(comp)  // not `+ comp`: String + Substring is generic, looked up at run time
            if mkdir(cur, 0o755) == 0 {
                if firstCreated == nil { firstCreated = cur }
            } else if errno != EEXIST {
                let e = errno
                if let firstCreated { try? Cgroup2.removeTree(from: directory, upTo: firstCreated) }
                throw SkiffError(
                    "create cgroup", cur, errno: e,
                    hint: e == EROFS || e == EACCES ? "the cgroup2 hierarchy is not writable here" : nil)
            }
        }
        return firstCreated
    }

    /// Moves `pid` into the cgroup whose directory `directoryFd` is open on: after a setns into
    /// a container's mount namespace, a path would be resolved in the container's tree (which
    /// may have its own /sys/fs/cgroup).
    public func join(pid: pid_t, directoryFd: Int32) throws {
        let fd = try openProcs(directoryFd: directoryFd)
        defer { close(fd) }
        try join(pid: pid, procsFd: fd)
    }

    /// cgroup.procs of the directory `directoryFd` is open on, for writing: opened before a
    /// setns into a cgroup namespace (with nsdelegate the kernel then refuses to open it).
    public func openProcs(directoryFd: Int32) throws -> Int32 {
        let fd = openat(directoryFd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw SkiffError.sys("join cgroup", directory + "/cgroup.procs") }
        return fd
    }

    public func join(pid: pid_t, procsFd: Int32) throws {
        let s = "\(pid)"
        if write(procsFd, s, s.utf8.count) < 0 { throw SkiffError.sys("join cgroup", directory + "/cgroup.procs") }
    }

    public func join(pid: pid_t) throws {
        do {
            try FS.writeFile(directory + "/cgroup.procs", "\(pid)", flags: O_WRONLY)
        } catch var e as SkiffError {
            e.op = "join cgroup"
            throw e
        }
    }

    public func procs() throws -> [pid_t] {
        try FS.readString(directory + "/cgroup.procs").split(separator: "\n").compactMap { pid_t($0) }
    }

    /// The processes of this cgroup and of every cgroup below it (runc's GetAllPids).
    public func procsInSubtree() throws -> [pid_t] {
        var all = try procs()
        for name in (try? FS.listDirectory(directory)) ?? [] where FS.isDirectory(directory + "/" + name) {
            all += (try? Cgroup2.at(directory + "/" + name).procsInSubtree()) ?? []
        }
        return all
    }

    public var exists: Bool { FS.isDirectory(directory) }

    /// Kills everything inside with cgroup.kill (5.14+), falling back to signalling each pid.
    public func killAll(signal: Int32 = SIGKILL) throws {
        if signal == SIGKILL, (try? FS.writeFile(directory + "/cgroup.kill", "1", flags: O_WRONLY)) != nil { return }
        try refuseHierarchyRoot("kill every process in")
        for p in try procs() { kill(p, signal) }
    }

    /// A hierarchy's root has no cgroup.kill, and its cgroup.procs lists every process not in a
    /// cgroup of its own: on a host that uses no other cgroups, all of them. No recorded path may
    /// make the runtime signal every one of those, or walk the whole hierarchy removing empty
    /// cgroups. The cgroup2 root is known by what it is, wherever it is mounted (also bound onto
    /// a directory below itself, where the path and the device look like any cgroup's): the one
    /// cgroup without cgroup.events. Any other mount point is refused too.
    func refuseHierarchyRoot(_ what: String) throws {
        let cgroup2Root = FS.filesystemType(ofDirectory: directory) == Cgroup2.superMagic && !FS.exists(directory + "/cgroup.events")
        var mountPoint = false
        if let here = FS.linkStat(directory), let parent = FS.linkStat(directory + "/..") { mountPoint = here.st_dev != parent.st_dev }
        if cgroup2Root || mountPoint {
            throw SkiffError.msg("\(what) \(quote(directory)): the root of a cgroup hierarchy or a mount point, not a container's cgroup")
        }
    }

    public func setFrozen(_ frozen: Bool) throws {
        try FS.writeFile(directory + "/cgroup.freeze", frozen ? "1" : "0", flags: O_WRONLY)
    }

    public func isFrozen() -> Bool {
        guard let ev = try? FS.readString(directory + "/cgroup.events") else { return false }
        return ev.split(separator: "\n").contains("frozen 1")
    }

    /// Removes the cgroup, waiting up to ~1 s for exiting processes to leave it, then rmdirs
    /// every parent up to `createdTop`. With `killRemaining` whatever is left is killed first.
    public func remove(createdTop: String?, killRemaining: Bool = false, waitBusy: Bool = true) throws {
        guard exists else { return }
        try refuseHierarchyRoot("remove")
        if killRemaining { try? killAll() }
        // Sub-cgroups first (exec --cgroup, a payload's own): rmdir refuses a cgroup with
        // children, and runc's delete removes the whole subtree too.
        try Cgroup2.removeDirectory(directory, waitBusy: waitBusy)
        if let createdTop { try Cgroup2.removeTree(from: FS.dirname(directory), upTo: createdTop, leafGone: true) }
    }

    /// rmdir of `dir` and every cgroup below it, deepest first; a busy one (its processes still
    /// exiting) is retried for up to a second.
    static func removeDirectory(_ dir: String, waitBusy: Bool) throws {
        // Most cgroups have no children: rmdir first, and look inside only when it is refused
        // (listing stats each of the ~40 interface files otherwise).
        if rmdir(dir) == 0 || errno == ENOENT { return }
        for name in FS.subdirectories(dir) {
            try removeDirectory(dir + "/" + name, waitBusy: waitBusy)
        }
        var tries = 0
        while true {
            if rmdir(dir) == 0 || errno == ENOENT { return }
            if errno != EBUSY || tries > 200 || !waitBusy {
                throw SkiffError.sys("remove cgroup", dir, hint: errno == EBUSY ? "processes are still in it" : nil)
            }
            tries += 1
            sleepMillis(5)
        }
    }

    static func removeTree(from leaf: String, upTo top: String, leafGone: Bool = false) throws {
        var cur = leaf
        while cur.hasPrefix(top) && cur.count >= top.count {
            if rmdir(cur) != 0 && errno != ENOENT { break }
            if cur == top { break }
            cur = FS.dirname(cur)
        }
    }
}

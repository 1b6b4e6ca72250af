import Glibc
import SkiffSys
import SkiffSpec
import SkiffCgroups

/// The runtime's state directory, its own module so that skiffctl can tell whether a container
/// the runtime holds is alive without linking the runtime (libcap, libseccomp, the init).
/// `<root>/<id>/` holds `state.json` (written atomically) and, while created, `exec.fifo`.
/// Operations that change a container take an exclusive flock on its directory.
public struct StateStore {
    public let root: String

    public init(root: String) { self.root = FS.clean(root) }

    public func dir(_ id: String) -> String { root + "/" + id }
    public func stateFile(_ id: String) -> String { dir(id) + "/state.json" }
    public func fifo(_ id: String) -> String { dir(id) + "/exec.fifo" }

    /// runc's rule: 1+ characters of [A-Za-z0-9_+.-], and not "." or "..".
    public static func validateID(_ id: String) throws {
        let ok =
            !id.isEmpty && id != "." && id != ".." && id.utf8.count <= 1024
            && id.unicodeScalars.allSatisfy {
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || "_+.-".unicodeScalars.contains($0)
            }
        if !ok { throw SkiffError.msg("invalid container id \(quote(id))", hint: "ids use letters, digits and _ + . -") }
    }

    /// The state root is the caller's alone (0700, as runc's): it names every container's
    /// bundle and holds their configs and hooks. So it must be a directory of ours, not a
    /// symlink, and no other user may be able to replace it or any directory above it: another
    /// user's root (or parent) would let them write a record whose hooks we run.
    package func ensureRoot() throws {
        if root == "/" { throw SkiffError.msg("--root must not be /") }
        try FS.mkdirAll(FS.dirname(root), mode: 0o755)
        // In a user namespace (rootless) the host's owners show as the overflow uid, and who we
        // are is no more than the user who made the namespace: the check guards real root.
        if !Proc.inUserNamespace { try StateStore.checkNoOtherUserCanReplace(FS.dirname(root)) }
        if mkdir(root, 0o700) != 0 && errno != EEXIST { throw SkiffError.sys("mkdir", root) }
        _ = try checkRootDirectory(makePrivate: true)
        StateStore.verifiedRoot = root
    }

    /// The root itself: a directory of ours, reached without a symlink; one others may write is
    /// made 0700 by the command that creates in it (`makePrivate`) and refused by the others.
    /// False when there is none.
    func checkRootDirectory(makePrivate: Bool) throws -> Bool {
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT && !makePrivate { return false }
            throw SkiffError.sys("open state root", root, hint: errno == ELOOP || errno == ENOTDIR ? "a symlink or not a directory" : nil)
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw SkiffError.sys("stat", root) }
        if st.st_uid != geteuid() { throw SkiffError.msg("state root \(root) belongs to uid \(st.st_uid), not to us", hint: "use a root of your own") }
        if makePrivate {
            if st.st_mode & 0o777 != 0o700 { fchmod(fd, 0o700) }
        } else if st.st_mode & 0o022 != 0 {
            throw SkiffError.msg("state root \(root) is writable by others", hint: "a state root is 0700")
        }
        return true
    }

    /// What every command that reads the store checks first (not only create, which makes it):
    /// the root is a directory of ours that no other user can write, reached without a symlink,
    /// and no other user can replace a directory above it. A record in a root another user
    /// controls names hooks we would run (delete runs its poststop hooks as root) and a
    /// directory delete removes. False when there is no root (no containers).
    package func verifyRoot() throws -> Bool {
        if StateStore.verifiedRoot == root { return true }
        guard try checkRootDirectory(makePrivate: false) else { return false }
        if !Proc.inUserNamespace { try StateStore.checkNoOtherUserCanReplace(FS.dirname(root)) }
        StateStore.verifiedRoot = root
        return true
    }

    /// The root verifyRoot last accepted in this process (a command reads the store a few times).
    nonisolated(unsafe) static var verifiedRoot: String?

    /// Every directory and every symlink on the way to `dir`, resolved here one component at a
    /// time (realpath would follow a symlink without saying whose it is), belongs to root or to
    /// us, and a directory that others may write is sticky (as /tmp is): nobody else can rename
    /// or repoint what lies below it. A symlink `nobody` left in /tmp is theirs to repoint.
    static func checkNoOtherUserCanReplace(_ dir: String) throws {
        func check(_ path: String, _ st: stat) throws {
            if st.st_uid != 0 && st.st_uid != geteuid() {
                throw SkiffError.msg("state root: \(path) belongs to uid \(st.st_uid)", hint: "another user could replace the state root")
            }
            if (st.st_mode & S_IFMT) == S_IFDIR && st.st_mode & 0o022 != 0 && st.st_mode & S_ISVTX == 0 {
                throw SkiffError.msg("state root: \(path) is writable by others", hint: "another user could replace the state root")
            }
        }
        // Components as [String] and plain String work: a `run` makes no generic type here that
        // it would not make anyway (each costs its metadata's pages; see Benchmark).
        func components(_ p: String) -> [String] {
            var out: [String] = []
            var cur = ""
            for c in p.utf8 {
                if c == UInt8(ascii: "/") {
                    if !cur.isEmpty { out.append(cur); cur = "" }
                } else {
                    cur.unicodeScalars.append(Unicode.Scalar(c))
                }
            }
            if !cur.isEmpty { out.append(cur) }
            return out
        }
        var st = stat()
        if lstat("/", &st) != 0 { throw SkiffError.sys("stat", "/") }
        try check("/", st)
        var resolved = ""  // the real path so far, "" for "/"
        var pending = components(FS.absolute(dir))
        var next = 0
        var links = 0
        while next < pending.count {
            let comp = pending[next]
            next += 1
            if comp == "." { continue }
            if comp == ".." {
                resolved = FS.dirname(resolved.isEmpty ? "/" : resolved)
                if resolved == "/" { resolved = "" }
                continue
            }
            let path = resolved + "/" + comp
            if lstat(path, &st) != 0 { throw SkiffError.sys("stat", path) }
            try check(path, st)
            guard (st.st_mode & S_IFMT) == S_IFLNK else {
                resolved = path
                continue
            }
            links += 1
            guard links <= 40, let target = FS.readlink(path) else { throw SkiffError("resolve", path, errno: ELOOP) }
            if target.hasPrefix("/") { resolved = "" }
            var rest = components(target)
            for k in next..<pending.count { rest.append(pending[k]) }
            pending = rest
            next = 0
        }
    }

    /// Makes the container directory; EEXIST means the id is taken.
    public func createDir(_ id: String) throws {
        try ensureRoot()
        if mkdir(dir(id), 0o711) != 0 {
            if errno == EEXIST { throw SkiffError.msg(.exists, "container with given ID already exists: \(id)") }
            throw SkiffError.sys("mkdir", dir(id))
        }
    }

    public func exists(_ id: String) -> Bool { FS.isDirectory(dir(id)) }

    public func load(_ id: String) throws -> ContainerRecord {
        try StateStore.validateID(id)
        guard try verifyRoot(), let bytes = (try? FS.readBytes(stateFile(id))) ?? (try? FS.readBytes(creatingFile(id))) else {
            throw SkiffError.msg(.notExist, "container \(quote(id)) does not exist")
        }
        let r = try JSON.decode(ContainerRecord.self, from: bytes, what: "state of \(quote(id))")
        // delete removes `<root>/<r.id>`: a record naming another container (or "../x") is not one
        // this store wrote.
        guard r.id == id else { throw SkiffError.msg("state of \(quote(id)) names another container, \(quote(r.id))", hint: "the state file was altered") }
        var record = r
        if let cg = r.cgroupPath, let problem = StateStore.cgroupProblem(cg, top: r.cgroupCreatedTop) {
            // Never acted on, and not fatal: `delete -f` still stops the init (by pid and start
            // time) and removes the state; the cgroup, wherever it is, is left alone.
            Logger.shared.warn("state of \(quote(id)): \(problem): the state file was altered; its cgroup is ignored")
            record.cgroupPath = nil
            record.cgroupCreatedTop = nil
        }
        return record
    }

    /// delete empties, kills and removes the recorded cgroup and the directories above it up to
    /// the one create made, by path: both must name a cgroup below this host's cgroup2 mount
    /// point (never the mount point itself: the hierarchy's root holds every other process), not
    /// any tree of the host. In cgroupfs only root can make a directory, and no one a symlink, so
    /// the path still names the directory checked when delete reaches it.
    static func cgroupProblem(_ dir: String, top: String?) -> String? {
        let mountpoint = Cgroup2.hostMountpoint()
        func underCgroupMount(_ p: String) -> Bool { mountpoint.map { p.hasPrefix($0 + "/") } ?? false }
        guard FS.clean(dir) == dir, underCgroupMount(dir) else {
            return "cgroupPath \(quote(dir)) is not a clean path below the cgroup2 mount point \(quote(mountpoint ?? "(none)"))"
        }
        if let top, FS.clean(top) != top || !(dir == top || dir.hasPrefix(top + "/")) || !underCgroupMount(top) {
            return "cgroupCreatedTop \(quote(top)) is not \(quote(dir)) or a cgroup above it"
        }
        guard let type = FS.filesystemType(ofDirectory: dir) else {
            // Gone already is fine: there is nothing left to remove.
            return errno == ENOENT ? nil : "cgroupPath \(quote(dir)): \(String(cString: strerror(errno)))"
        }
        return type == Cgroup2.superMagic ? nil : "cgroupPath \(quote(dir)) is not in a cgroup2 filesystem"
    }

    /// The record of a create still at work (see ContainerRecord.creatorPid). Its own file, so that
    /// state.json is first written once the container exists: replacing a file by rename makes
    /// ext4 flush the new one (auto_da_alloc), ~0.4 ms each time here.
    package func creatingFile(_ id: String) -> String { dir(id) + "/creating.json" }

    package func saveCreating(_ r: ContainerRecord) throws {
        try FS.writeFileAtomic(creatingFile(r.id), JSON.encode(r))
    }

    /// The final record of `create`; the provisional one goes.
    package func saveCreated(_ r: ContainerRecord) throws {
        try save(r)
        unlink(creatingFile(r.id))
    }

    /// The parts of the config the container was created with that `exec` needs.
    public func execConfig(_ id: String) throws -> ExecConfig {
        try JSON.decode(ExecConfig.self, from: try FS.readBytes(dir(id) + "/config.json"), what: "config of \(quote(id))")
    }

    public func save(_ r: ContainerRecord) throws {
        try FS.writeFileAtomic(stateFile(r.id), JSON.encode(r))
    }

    public func remove(_ id: String) throws { try FS.removeAll(dir(id)) }

    public func ids() throws -> [String] {
        guard try verifyRoot() else { return [] }
        return (try? FS.listDirectory(root))?.filter { FS.isDirectory(root + "/" + $0) } ?? []
    }

    /// Exclusive lock on the container directory; released when the fd is closed.
    public func lock(_ id: String) throws -> Int32 {
        guard try verifyRoot() else { throw SkiffError.msg(.notExist, "container \(quote(id)) does not exist") }
        let fd = Glibc.open(dir(id), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { throw SkiffError.msg(.notExist, "container \(quote(id)) does not exist") }
            throw SkiffError.sys("open", dir(id))
        }
        if retryEINTR({ flock(fd, LOCK_EX) }) != 0 { let e = SkiffError.sys("lock", dir(id)); close(fd); throw e }
        return fd
    }
}

public enum ContainerStatus: String, Sendable {
    case creating, created, running, paused, stopped
}

extension StateStore {
    /// What a record's processes and files say now (runc's status rules).
    public func status(of r: ContainerRecord) -> ContainerStatus {
        if let creator = r.creatorPid {
            // A create that died midway leaves a container that is not coming: stopped.
            return Proc.isAlive(creator, startTime: r.creatorStartTime ?? 0) ? .creating : .stopped
        }
        if r.pid == 0 { return .creating }
        if !Proc.isAlive(r.pid, startTime: r.startTime) { return .stopped }
        // Frozen first, as runc: a created container can be paused too.
        if let dir = r.cgroupPath, Cgroup2.at(dir).isFrozen() { return .paused }
        if FS.exists(fifo(r.id)) && !r.started { return .created }
        return .running
    }
}

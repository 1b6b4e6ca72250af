import Foundation
import SkiffSys

/// Snapshots, keyed by chain ID for committed layers (shared by every image that has them) and
/// by container id for a container's active one. Two kinds, as in containerd:
/// - overlayfs: each committed snapshot `snapshots/<id>/fs` holds one layer's changes (whiteouts as
///   overlay expects them); a container's active `fs` is the overlay's upperdir;
/// - native (hosts without overlayfs): each snapshot is a full copy of its parent with the layer
///   applied (whiteouts remove files); a container's rootfs is a bind mount of its copy.
/// Chosen by `SKIFF_SNAPSHOTTER` or config `snapshotter`, else overlayfs when the kernel has it.
/// Each snapshot's row names its snapshotter, so the two never share a snapshot.
public struct Snapshotter {
    public enum Kind: String { case overlayfs, native }
    let store: Store
    public let kind: Kind
    var dir: String { store.root + "/snapshots" }
    /// Directory and lock names of native snapshots start with "native-" (kept from the stores
    /// that had it in the key).
    var pathPrefix: String { kind == .native ? "native-" : "" }

    public init(_ store: Store, kind: Kind? = nil) {
        self.store = store
        self.kind = kind ?? Snapshotter.configured(store)
    }

    static func configured(_ store: Store) -> Kind {
        if let k = (getenv("SKIFF_SNAPSHOTTER").map { String(cString: $0) } ?? store.snapshotter).flatMap(Kind.init(rawValue:)) { return k }
        let fs = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        return fs.contains("\toverlay\n") ? .overlayfs : .native
    }

    public struct Info { public var key: String; public var id: Int64; public var parent: String?; public var kind: String }

    func info(_ row: [Database.Value]) -> Info {
        Info(key: row[0].string, id: row[1].int, parent: row[2].string.isEmpty ? nil : row[2].string, kind: row[3].string)
    }

    public func list() throws -> [Info] {
        try store.db.query(
            "SELECT key, id, parent, kind FROM snapshots WHERE namespace = ? AND snapshotter = ? ORDER BY id",
            [.text(store.namespace), .text(kind.rawValue)]
        ).map(info)
    }

    public func get(_ key: String) throws -> Info? {
        try store.db.query(
            "SELECT key, id, parent, kind FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
            [.text(store.namespace), .text(kind.rawValue), .text(key)]
        )
        .first.map(info)
    }

    /// Drops a snapshot's record and directory (no checks: prune and doctor decided).
    func forget(_ s: Info) throws {
        try? FileManager.default.removeItem(atPath: dir + "/\(s.id)")
        try store.db.query(
            "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ? AND id = ?",
            [.text(store.namespace), .text(kind.rawValue), .text(s.key), .int(s.id)])
    }

    /// Forgets `s` (as listed) unless a command holds its layer lock (an unpack in progress,
    /// perhaps a pull's that lasts as long as its download); the lock is kept through the
    /// removal, so no unpack can start in between. False when busy or changed since.
    func forgetIfIdle(_ s: Info) throws -> Bool {
        let path = lockPath(s.key)
        let fd = open(path, O_RDWR | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        // No lock file: no unpack ever ran for this key. Any other failure: take it as busy.
        if fd < 0 && errno != ENOENT { return false }
        // A file unlinked since we opened it may have a successor that its maker holds.
        if fd >= 0 && (flock(fd, LOCK_EX | LOCK_NB) != 0 || !Snapshotter.isAtPath(fd, path)) { return false }
        guard let now = try get(s.key), now.id == s.id, now.kind == s.kind else { return false }
        try forget(now)
        // Only a layer's lock is shared by name; any other is its maker's alone, who is gone.
        if fd >= 0 && !Snapshotter.isChainID(s.key) { unlink(path) }
        return true
    }

    /// A layer's lock is named by its chain ID (layers are shared by every namespace); any other
    /// key's (a container's, an extraction's: anyone's to choose, "../x" included) by the digest
    /// of its namespace and key. Keys named like a layer are refused for anything but layers.
    func lockPath(_ key: String) -> String {
        let name =
            Snapshotter.isChainID(key)
            ? key.replacingOccurrences(of: ":", with: "-") : "key-" + SHA256.hex(Array((store.namespace + "\0" + key).utf8))
        return dir + "/.locks/" + pathPrefix + name
    }

    /// Whether the file `fd` is open on is still the one at `path` (a lock file whose holder
    /// removes it: whoever locked it after that holds nothing).
    static func isAtPath(_ fd: Int32, _ path: String) -> Bool {
        var held = stat(), now = stat()
        return fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev
    }

    func makeLocksDirectory() throws {
        let dir = self.dir + "/.locks"
        if access(dir, F_OK) != 0 { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    }

    static func isChainID(_ key: String) -> Bool { (try? ContentStore.validateDigest(key)) != nil }

    /// A diff ID or chain ID must be a digest before a lock, snapshot or parent is named by it.
    static func requireChainID(_ id: String) throws {
        guard isChainID(id) else {
            throw ManagerError("unpack layer", id, "not a sha256 digest", hint: "the image config's rootfs.diff_ids must be sha256:<64 lowercase hex>")
        }
    }

    /// The lock of a snapshot being made under a key that is not a layer's (a container's
    /// `prepare`, a pull's extraction): held from before its record exists until the record is
    /// complete or gone, so that prune and doctor leave it alone. Never waits: a key being made
    /// by another command is an error.
    func lockNew(_ key: String) throws -> Int32 {
        guard !Snapshotter.isChainID(key) else { throw ManagerError("lock snapshot", key, "a sha256 digest names a layer") }
        try makeLocksDirectory()
        let path = lockPath(key)
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw ManagerError("lock snapshot", path, String(cString: strerror(errno))) }
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                if errno == EINTR { continue }
                let busy = errno == EWOULDBLOCK
                let e = String(cString: strerror(errno))
                close(fd)
                throw busy ? ManagerError("create snapshot", key, "another command is making it") : ManagerError("lock snapshot", path, e)
            }
            // Removed by its last holder (or by doctor) between our open and our lock: again.
            if Snapshotter.isAtPath(fd, path) { return fd }
            close(fd)
        }
    }

    /// Lets go of `lockNew`'s lock once the record is complete or gone. The file goes first: a
    /// command that opened it before finds, once it gets the lock, that it holds a removed file
    /// (and a record that is not the pending one it listed).
    func unlockNew(_ key: String, _ fd: Int32) {
        unlink(lockPath(key))
        close(fd)
    }

    /// Lock files of snapshots made under their own keys that nobody holds: left by a command
    /// that died while making one (their records, if any, are pending and found on their own).
    func staleLocks() -> [String] {
        let dir = self.dir + "/.locks"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("key-") || $0.hasPrefix("native-key-") }.sorted().map { dir + "/" + $0 }.filter { path in
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return flock(fd, LOCK_EX | LOCK_NB) == 0
        }
    }

    /// What pulls that died left (their extractions, pending under keys of their own, and their
    /// lock files): each pull takes them away first, as the unpack redoes a crashed layer, so
    /// that they do not pile up until a prune. Whatever a live command holds stays.
    func sweepAbandonedExtractions() {
        let rows = (try? list()) ?? []
        for s in rows where s.key.hasPrefix("extract-") && s.kind.hasSuffix("-pending") { _ = try? forgetIfIdle(s) }
        for path in staleLocks() { Snapshotter.removeStaleLock(path) }
    }

    /// Removes a lock file `staleLocks` found, if nobody holds it now.
    static func removeStaleLock(_ path: String) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 && isAtPath(fd, path) { unlink(path) }
    }

    /// Rows the last statement changed.
    func changes() throws -> Int64 { try store.db.query("SELECT changes()")[0][0].int }

    func fs(_ id: Int64) -> String { dir + "/\(id)/fs" }

    /// Lower directories from `key` down to the base layer, top first.
    func chain(_ key: String) throws -> [String] {
        var out: [String] = []
        var cur: String? = key
        while let k = cur {
            guard let s = try get(k) else { throw ManagerError("snapshot", k, "not found") }
            out.append(fs(s.id))
            cur = s.parent
        }
        return out
    }

    /// Makes a directory for a new snapshot and records it; `body` fills it (an unpack) before
    /// the record is committed. A failure removes the directory: no partial layer is kept.
    func create(key: String, parent: String?, kind: String, fill: (String) throws -> Void) throws -> Info {
        let s = try begin(key: key, parent: parent, kind: kind)
        do {
            try fill(fs(s.id))
            try complete(s)
        } catch {
            discard(s)
            throw error
        }
        return s
    }

    /// create's first half: the record, as `<kind>-pending`, and the empty directory (`fs`, and
    /// `work` for an active snapshot). The caller fills `fs` and then completes or discards it;
    /// while its layer lock is held, prune and doctor leave the pending record alone.
    func begin(key: String, parent: String?, kind: String) throws -> Info {
        let id: Int64 = try store.db.transaction {
            if try get(key) != nil { throw ManagerError("snapshot", key, "already exists") }
            // Never an id given before (a command may still hold a removed snapshot's id and
            // directory, and act on them by that id), nor one whose directory is still there.
            var next = try store.db.query(
                "SELECT max(coalesce((SELECT max(id) FROM snapshots), 0), coalesce((SELECT max(last) FROM snapshot_ids), 0)) + 1")[0][0].int
            while access(dir + "/\(next)", F_OK) == 0 { next += 1 }
            try store.db.query("UPDATE snapshot_ids SET last = ?", [.int(next)])
            try store.db.query(
                "INSERT INTO snapshots(namespace, snapshotter, key, id, parent, kind, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(store.namespace), .text(self.kind.rawValue), .text(key), .int(next), parent.map { .text($0) } ?? .null,
                    .text(kind + "-pending"), .text(Store.now())
                ])
            return next
        }
        let s = Info(key: key, id: id, parent: parent, kind: kind)
        // Made here, not found: a directory someone else has is never filled as this snapshot,
        // nor removed with its row (only the row goes).
        if mkdir(dir, 0o755) != 0 && errno != EEXIST || mkdir(dir + "/\(id)", 0o755) != 0 {
            let e = String(cString: strerror(errno))
            discardRow(s)
            throw ManagerError("create snapshot", dir + "/\(id)", e)
        }
        do {
            try FileManager.default.createDirectory(atPath: fs(id), withIntermediateDirectories: true)
            if kind == "active" { try FileManager.default.createDirectory(atPath: dir + "/\(id)/work", withIntermediateDirectories: true) }
        } catch {
            discard(s)
            throw error
        }
        return s
    }

    /// A filled pending snapshot becomes `s.kind`, under the key `key` (a pull's extraction
    /// becomes its layer) or its own; an error when its record is gone.
    func complete(_ s: Info, as key: String? = nil) throws {
        try store.db.query(
            "UPDATE snapshots SET key = ?, kind = ? WHERE namespace = ? AND snapshotter = ? AND key = ? AND id = ? AND kind = ?",
            [
                .text(key ?? s.key), .text(s.kind), .text(store.namespace), .text(kind.rawValue), .text(s.key), .int(s.id),
                .text(s.kind + "-pending")
            ])
        if try changes() != 1 { throw ManagerError("create snapshot", key ?? s.key, "its record was removed while it was being made") }
    }

    /// A pending snapshot's record goes, and its directory with it; a directory whose record
    /// someone else removed is left alone.
    func discard(_ s: Info) {
        if discardRow(s) { try? FileManager.default.removeItem(atPath: dir + "/\(s.id)") }
    }

    @discardableResult
    func discardRow(_ s: Info) -> Bool {
        do {
            try store.db.query(
                "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ? AND id = ? AND kind = ?",
                [.text(store.namespace), .text(kind.rawValue), .text(s.key), .int(s.id), .text(s.kind + "-pending")])
            return try changes() == 1
        } catch {
            return false
        }
    }

    public func remove(_ key: String) throws {
        guard let s = try get(key) else { throw ManagerError("remove snapshot", key, "not found") }
        if try !store.db.query(
            "SELECT 1 FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ?",
            [.text(store.namespace), .text(kind.rawValue), .text(key)]
        ).isEmpty {
            throw ManagerError("remove snapshot", key, "it has children")
        }
        // Under the layer lock: a pending snapshot a pull is still filling is not taken from it.
        guard try forgetIfIdle(s) else {
            throw ManagerError("remove snapshot", key, "it is being unpacked", hint: "wait for the pull or unpack to finish")
        }
    }

    /// The OCI chain IDs of a layer stack: the first diff ID, then sha256("<parent chain> <diff>").
    static func chainIDs(_ diffIDs: [String]) -> [String] {
        var out: [String] = []
        for diff in diffIDs { out.append(out.last.map { "sha256:" + SHA256.hex(Array(($0 + " " + diff).utf8)) } ?? diff) }
        return out
    }

    /// An exclusive lock (flock) on one layer's unpack, across skiffctl processes. Its holders
    /// work on local files only (an unpack from the content store, a pull committing what it
    /// extracted), so waiting for it is bounded: no download holds it.
    func lockLayer(_ chainID: String) throws -> Int32 {
        // The first chain ID is the image config's first diff ID as written: anything else than
        // a digest would name a file outside .locks ("../../etc/nologin") or lock a container's
        // snapshot key, which the unpack would then take for a layer.
        try Snapshotter.requireChainID(chainID)
        try makeLocksDirectory()
        let path = lockPath(chainID)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw ManagerError("lock layer", path, String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { let e = String(cString: strerror(errno)); close(fd); throw ManagerError("lock layer", path, e) }
        }
        return fd
    }

    /// True while another command holds the snapshot's lock (its pending snapshot is live).
    func busy(_ key: String) -> Bool {
        let fd = open(lockPath(key), O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// An active snapshot on top of `parent` (native: a copy of it).
    public func prepare(key: String, parent: String) throws {
        guard !Snapshotter.isChainID(key) else {
            throw ManagerError("prepare snapshot", key, "a sha256 digest names a layer unpacked from an image", hint: "choose another key")
        }
        let p = try get(parent)
        guard p?.kind == "committed" else {
            throw ManagerError(
                "prepare snapshot", key, p == nil ? "parent \(parent) not found" : "parent \(parent) is \(p!.kind), not committed")
        }
        // Locked while it is pending (a native copy can take long): prune and doctor would
        // take the pending record for a crash's.
        let lock = try lockNew(key)
        defer { unlockNew(key, lock) }
        _ = try create(key: key, parent: parent, kind: "active") { fsDir in
            if kind == .native, let p { try copyTree(fs(p.id), to: fsDir) }
        }
    }

    /// Commits a pull's extraction `s` (a pending snapshot under a key of its own, as containerd's
    /// unpacker names them) as the layer `chainID`, under the layer's lock; false when another
    /// command committed that layer first (the caller discards its copy). A pending record of
    /// the layer found under the lock was left by a crash and goes.
    func commitExtracted(_ s: Info, as chainID: String) throws -> Bool {
        let lock = try lockLayer(chainID)
        defer { close(lock) }
        if let e = try get(chainID) {
            guard e.kind.hasSuffix("-pending") else { return false }
            try forget(e)
        }
        try complete(s, as: chainID)
        return true
    }

    /// The mount a shim gets for an active snapshot, as containerd's snapshotters describe it,
    /// plus nodev: a device node an image carries must not open a host device for whoever
    /// reaches the rootfs through /proc/PID/root (the container's own /dev is a mount of its own).
    public func mount(_ key: String) throws -> (type: String, source: String, options: [String]) {
        guard let s = try get(key) else { throw ManagerError("snapshot", key, "not found") }
        if kind == .native { return ("bind", fs(s.id), ["rbind", "rw", "nodev"]) }
        guard let parent = s.parent else { throw ManagerError("snapshot", key, "has no parent") }
        let userxattr = UserSession.active ? ["userxattr"] : []  // rootless: user.overlay.* (kernel ≥ 5.11)
        return (
            "overlay", "overlay",
            ["nodev", "index=off"] + userxattr + [
                "workdir=" + dir + "/\(s.id)/work", "upperdir=" + fs(s.id),
                "lowerdir=" + (try chain(parent)).joined(separator: ":")
            ]
        )
    }

    /// `snapshots commit NAME KEY`: an active snapshot becomes a committed one others can build on.
    public func commit(name: String, key: String) throws {
        guard let s = try get(key) else { throw ManagerError("commit snapshot", key, "not found") }
        guard s.kind == "active" else { throw ManagerError("commit snapshot", key, "it is \(s.kind), not active") }
        if try get(name) != nil { throw ManagerError("commit snapshot", name, "already exists") }
        // A committed snapshot named like a chain ID would be taken for that layer by images.
        guard !Snapshotter.isChainID(name) else {
            throw ManagerError("commit snapshot", name, "a sha256 digest names a layer unpacked from an image", hint: "choose another name")
        }
        try store.db.query(
            "UPDATE snapshots SET key = ?, kind = 'committed' WHERE namespace = ? AND snapshotter = ? AND key = ?",
            [.text(name), .text(store.namespace), .text(kind.rawValue), .text(key)])
    }

    /// A full copy with owners, modes, times, devices, links and xattrs (cp -a).
    func copyTree(_ src: String, to dst: String) throws {
        let r = try Spawn.run(path: "/bin/cp", args: ["/bin/cp", "-a", "--reflink=auto", src + "/.", dst + "/"], env: ["PATH=/usr/bin:/bin"], stdin: [])
        if r.status != 0 { throw ManagerError("copy snapshot", src, r.outputText) }
    }
}

extension Snapshotter {
    /// `images mount`: the image's layers read-only at `target` (an overlay of the chain).
    /// nosuid and nodev: the view may be where other users can reach it, and an image's setuid
    /// binaries and device nodes must not work there.
    public func mountReadOnly(top: String, at target: String) throws {
        let lowers = kind == .native ? [fs(try get(top)!.id)] : try chain(top)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let data = lowers.count == 1 ? nil : "lowerdir=" + lowers.joined(separator: ":")
        let flags = UInt(MS_RDONLY | MS_NOSUID | MS_NODEV)
        let r =
            data == nil
            ? Glibc.mount(lowers[0], target, nil, UInt(MS_BIND) | flags, nil)
            : Glibc.mount("overlay", target, "overlay", flags, data)
        if r != 0 { throw ManagerError("mount image", target, String(cString: strerror(errno))) }
        if data == nil && Glibc.mount(nil, target, nil, UInt(MS_BIND | MS_REMOUNT) | flags, nil) != 0 {
            let e = String(cString: strerror(errno)); umount2(target, Int32(MNT_DETACH))
            throw ManagerError("mount image", target, e)
        }
    }
}

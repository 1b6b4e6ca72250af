import Foundation
import SkiffJSON
import SkiffSys
import SkiffSpec

/// A container's record (containerd's core/containers Container): the image it came from, the
/// snapshot its rootfs is (key and snapshotter), the runtime, and the OCI spec as stored.
public struct Container: Equatable {
    public var id: String
    public var image: String
    public var snapshotKey: String
    public var snapshotter: String
    public var runtime: String
    public var spec: [UInt8]
    public var created: String
}

/// The containers of one namespace in the metadata database: every statement on the table is
/// here (containerd's metadata container store).
public struct ContainerStore {
    let store: Store
    public init(_ store: Store) { self.store = store }

    static let columns = "id, image, snapshot, snapshotter, runtime, spec, created"

    static func record(_ row: [Database.Value]) -> Container {
        Container(
            id: row[0].string, image: row[1].string, snapshotKey: row[2].string, snapshotter: row[3].string,
            runtime: row[4].string, spec: row[5].bytes, created: row[6].string)
    }

    public func get(_ id: String) throws -> Container? {
        try store.db.query(
            "SELECT \(ContainerStore.columns) FROM containers WHERE namespace = ? AND id = ?",
            [.text(store.namespace), .text(id)]
        ).first.map(ContainerStore.record)
    }

    public func list() throws -> [Container] {
        try store.db.query("SELECT \(ContainerStore.columns) FROM containers WHERE namespace = ? ORDER BY id", [.text(store.namespace)])
            .map(ContainerStore.record)
    }

    /// Fails with "already exists" for a taken id (checked and inserted in one transaction).
    public func create(_ c: Container) throws {
        try store.db.transaction {
            if try get(c.id) != nil { throw ManagerError("create container", c.id, "already exists") }
            try store.db.query(
                "INSERT INTO containers(namespace, id, image, snapshot, runtime, spec, created, snapshotter) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(store.namespace), .text(c.id), .text(c.image), .text(c.snapshotKey), .text(c.runtime),
                    .blob(c.spec), .text(c.created), .text(c.snapshotter)
                ])
        }
    }

    public func delete(_ id: String) throws {
        try store.db.query("DELETE FROM containers WHERE namespace = ? AND id = ?", [.text(store.namespace), .text(id)])
    }

    /// The snapshot keys containers use (garbage collection keeps them).
    public func snapshotKeys() throws -> Set<String> { Set(try list().map(\.snapshotKey)) }
}

public struct RunOptions {
    public var image = ""
    public var id = ""
    public var args: [String] = []
    public var env: [String] = []
    public var cwd: String?
    public var user: String?
    public var remove = false
    public var netHost = false
    public var logURI: String?
    public var nullIO = false
    /// A terminal: the container gets a pty; our stdin/stdout are relayed (raw mode on a tty).
    public var tty = false
    /// `--mount type=bind,src=/host,dst=/ctr,options=rbind:ro` (ctr's syntax).
    public var mounts: [String] = []
    public init() {}

    /// Parses one --mount value.
    public static func parseMount(_ s: String) throws -> SkiffSpec.Mount {
        var type = "bind", src: String?, dst: String?, options: [String] = []
        for part in s.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ManagerError("--mount", s, "\"\(part)\" is not key=value") }
            switch kv[0] {
            case "type": type = kv[1]
            case "src", "source": src = kv[1]
            case "dst", "destination", "target": dst = kv[1]
            case "options": options = kv[1].split(separator: ":").map(String.init)
            default: throw ManagerError("--mount", s, "unknown key \"\(kv[0])\"", hint: "type, src, dst, options")
            }
        }
        guard let dst, dst.hasPrefix("/") else { throw ManagerError("--mount", s, "dst must be an absolute path") }
        if type == "bind" {
            guard let src, src.hasPrefix("/") else { throw ManagerError("--mount", s, "src must be an absolute path") }
            guard FileManager.default.fileExists(atPath: src) else { throw ManagerError("--mount", src, "no such file or directory") }
            if !options.contains("bind") && !options.contains("rbind") { options.insert("rbind", at: 0) }
        }
        return SkiffSpec.Mount(destination: dst, type: type, source: src ?? type, options: options)
    }
}

/// Containers: the OCI spec from the image config, the record, an active snapshot on the
/// unpacked image, the bundle under `state/<namespace>/<id>`. Their tasks are in Tasks.swift.
extension Tasks {
    /// The OCI spec: skiff's defaults, then the image's entrypoint/cmd/env/workdir/user, then
    /// the command line's overrides.
    func spec(_ config: ImageConfig, _ o: RunOptions) throws -> Spec {
        var s = DefaultSpec.make(rootless: false)
        let c = config.config
        var p = s.process!
        p.terminal = o.tty
        let args = (c?.Entrypoint ?? []) + (o.args.isEmpty ? (c?.Cmd ?? []) : o.args)
        guard !args.isEmpty else { throw ManagerError("run", o.id, "no command: the image has no entrypoint or cmd", hint: "give one after the image") }
        p.args = args
        var env = c?.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        for e in o.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(e)
        }
        p.env = env
        p.cwd = o.cwd ?? ((c?.WorkingDir ?? "").isEmpty ? "/" : c!.WorkingDir!)
        if let u = o.user ?? c?.User, !u.isEmpty {
            let source = o.user != nil ? "--user" : "the image's User"
            let parts = u.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, let uid = UInt32(parts[0]), parts.count < 2 || UInt32(parts[1]) != nil else {
                throw ManagerError("run", o.id, "\(source) \"\(u)\": only numeric uid[:gid] is supported")
            }
            let gid = parts.count > 1 ? UInt32(parts[1])! : 0
            // (uid_t)-1 would leave the process root: refused here, as the runtime refuses it too.
            for (what, id) in [("uid", uid), ("gid", gid)] where id > Validation.maxID {
                throw ManagerError("run", o.id, "\(source) \"\(u)\": \(what) \(id) is out of range (0-\(Validation.maxID))")
            }
            p.user = User(uid: uid, gid: gid)
        }
        p.noNewPrivileges = false
        s.process = p
        s.root = Root(path: "rootfs", readonly: false)
        s.hostname = o.id
        if o.netHost { s.linux?.namespaces?.removeAll { $0.type == "network" } }
        s.mounts = (s.mounts ?? []) + (try o.mounts.map(RunOptions.parseMount))
        s.linux?.cgroupsPath = "/" + store.namespace + "/" + o.id
        return s
    }

    /// `containers create`: the record, an active snapshot on the unpacked image, the bundle.
    /// Any failure undoes what was done.
    public func createContainer(_ o: RunOptions) throws {
        try Store.validateName(o.id, what: "container id")
        let images = ImageStore(store)
        let image = try images.get(o.image)
        let manifest = try images.manifest(for: image.target)
        let config = try images.config(manifest)
        let snapshots = Snapshotter(store)
        let top = try Unpacker(content: ContentStore(root: store.root), snapshots: snapshots).unpack(manifest, config)
        let spec = try spec(config, o)
        let specJSON = try JSON.encode(spec)
        var undo: [() -> Void] = []
        do {
            let records = ContainerStore(store)
            try records.create(
                Container(
                    id: o.id, image: image.name, snapshotKey: o.id, snapshotter: snapshots.kind.rawValue,
                    runtime: "io.containerd.skiff.v2", spec: specJSON, created: Store.now()))
            undo.append { try? records.delete(o.id) }
            try snapshots.prepare(key: o.id, parent: top)
            undo.append { try? snapshots.remove(o.id) }
            let dir = bundle(o.id)
            try Store.ensureDirectory(FS.dirname(dir), mode: 0o700)
            if mkdir(dir, 0o700) != 0 { throw ManagerError("create bundle", dir, String(cString: strerror(errno))) }
            undo.append { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.createDirectory(atPath: dir + "/rootfs", withIntermediateDirectories: false)
            try FS.writeFileAtomic(dir + "/config.json", specJSON, mode: 0o600)
        } catch {
            for u in undo.reversed() { u() }
            throw error
        }
    }

    /// `containers rm`: refused while its task exists: asked of the shim (at the address the
    /// bundle names or, if that file is gone, where the shim of this id listens) and of the
    /// runtime's state, not of our records alone.
    public func removeContainer(_ id: String) throws {
        let records = ContainerStore(store)
        guard let record = try records.get(id) else { throw ManagerError("remove container", id, "not found") }
        if taskAlive(id) {
            throw ManagerError("remove container", id, "it has a task", hint: "skiffctl tasks rm -f \(id) first")
        }
        let dir = bundle(id)
        unmountAll(dir + "/rootfs")
        try? Snapshotter(store, kind: Snapshotter.Kind(rawValue: record.snapshotter)).remove(record.snapshotKey)
        try? FileManager.default.removeItem(atPath: dir)
        try records.delete(id)
    }

    /// `containers info`: the record as ctr prints it (the spec as stored, not re-encoded).
    public func containerInfo(_ id: String) throws -> JSONValue {
        guard let c = try ContainerStore(store).get(id) else { throw ManagerError("container", id, "not found") }
        let spec = (try? JSONParser.parse(c.spec)) ?? .object([])
        return .object([
            ("ID", .string(c.id)), ("Image", .string(c.image)), ("Runtime", .object([("Name", .string(c.runtime))])),
            ("Snapshotter", .string(c.snapshotter)), ("SnapshotKey", .string(c.snapshotKey)), ("CreatedAt", .string(c.created)),
            ("Spec", spec)
        ])
    }

    public func containers() throws -> [(id: String, image: String, runtime: String)] {
        try ContainerStore(store).list().map { ($0.id, $0.image, $0.runtime) }
    }
}

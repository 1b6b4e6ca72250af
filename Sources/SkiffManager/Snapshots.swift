import Foundation
import SkiffSys

/// The overlayfs snapshotter: each committed layer is a directory `snapshots/<id>/fs` keyed by
/// its chain ID (shared by every image that has it); a container gets an active snapshot whose
/// `fs` is the overlay's upperdir and `work` its workdir.
public struct Snapshotter {
    let store: Store
    var dir: String { store.root + "/snapshots" }

    public init(_ store: Store) { self.store = store }

    public struct Info { public var key: String; public var id: Int64; public var parent: String?; public var kind: String }

    public func list() throws -> [Info] {
        try store.db.query("SELECT key, id, parent, kind FROM snapshots WHERE namespace = ? ORDER BY id", [.text(store.namespace)]).map {
            Info(key: $0[0].string, id: $0[1].int, parent: $0[2].string.isEmpty ? nil : $0[2].string, kind: $0[3].string)
        }
    }

    public func get(_ key: String) throws -> Info? {
        try store.db.query("SELECT key, id, parent, kind FROM snapshots WHERE namespace = ? AND key = ?", [.text(store.namespace), .text(key)])
            .first.map { Info(key: $0[0].string, id: $0[1].int, parent: $0[2].string.isEmpty ? nil : $0[2].string, kind: $0[3].string) }
    }

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
        let id: Int64 = try store.db.transaction {
            if try get(key) != nil { throw ManagerError("snapshot", key, "already exists") }
            let next = (try store.db.query("SELECT coalesce(max(id), 0) + 1 FROM snapshots")[0][0].int)
            try store.db.query("INSERT INTO snapshots(namespace, key, id, parent, kind, created) VALUES (?, ?, ?, ?, ?, ?)",
                               [.text(store.namespace), .text(key), .int(next), parent.map { .text($0) } ?? .null, .text(kind + "-pending"),
                                .text(Store.now())])
            return next
        }
        let base = dir + "/\(id)"
        do {
            try FileManager.default.createDirectory(atPath: base + "/fs", withIntermediateDirectories: true)
            if kind == "active" { try FileManager.default.createDirectory(atPath: base + "/work", withIntermediateDirectories: true) }
            try fill(base + "/fs")
            try store.db.query("UPDATE snapshots SET kind = ? WHERE namespace = ? AND key = ?", [.text(kind), .text(store.namespace), .text(key)])
        } catch {
            try? FileManager.default.removeItem(atPath: base)
            _ = try? store.db.query("DELETE FROM snapshots WHERE namespace = ? AND key = ?", [.text(store.namespace), .text(key)])
            throw error
        }
        return Info(key: key, id: id, parent: parent, kind: kind)
    }

    public func remove(_ key: String) throws {
        guard let s = try get(key) else { throw ManagerError("remove snapshot", key, "not found") }
        if try !store.db.query("SELECT 1 FROM snapshots WHERE namespace = ? AND parent = ?", [.text(store.namespace), .text(key)]).isEmpty {
            throw ManagerError("remove snapshot", key, "it has children")
        }
        try FileManager.default.removeItem(atPath: dir + "/\(s.id)")
        try store.db.query("DELETE FROM snapshots WHERE namespace = ? AND key = ?", [.text(store.namespace), .text(key)])
    }

    /// Unpacks an image's layers as committed snapshots (skipping those already there) and
    /// returns the top chain ID. Each layer's uncompressed digest must match the config's diff ID.
    public func unpack(_ manifest: ImageManifest, _ config: ImageConfig, content: ContentStore) throws -> String {
        guard manifest.layers.count == config.rootfs.diff_ids.count else {
            throw ManagerError("unpack", manifest.config.digest, "\(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff IDs")
        }
        var parent: String?
        for (layer, diffID) in zip(manifest.layers, config.rootfs.diff_ids) {
            let chainID = parent.map { "sha256:" + SHA256.hex(Array(($0 + " " + diffID).utf8)) } ?? diffID
            let existing = try get(chainID)
            if existing?.kind == "committed" { parent = chainID; continue }
            if existing?.kind.hasSuffix("-pending") == true { try? remove(chainID) }
            _ = try create(key: chainID, parent: parent, kind: "committed") { fsDir in
                let stream = try LayerStream(path: try content.path(layer.digest), mediaType: layer.mediaType)
                try LayerApplier(root: fsDir).apply(TarReader { n in try stream.read(n) })
                let got = try stream.finish()
                guard got == diffID else { throw ManagerError("unpack", layer.digest, "uncompressed digest \(got) does not match diff ID \(diffID)") }
            }
            parent = chainID
        }
        guard let top = parent else { throw ManagerError("unpack", manifest.config.digest, "the image has no layers") }
        return top
    }

    /// An active snapshot on top of `parent`, and the overlay mount containerd would pass a shim.
    public func prepare(key: String, parent: String) throws -> (type: String, source: String, options: [String]) {
        let lowers = try chain(parent)
        let s = try create(key: key, parent: parent, kind: "active") { _ in }
        return ("overlay", "overlay", ["index=off", "workdir=" + dir + "/\(s.id)/work", "upperdir=" + fs(s.id),
                                       "lowerdir=" + lowers.joined(separator: ":")])
    }
}

extension Snapshotter {
    /// `snapshots prune`: committed layers no image of this store needs and active snapshots no
    /// container owns (leftovers of a crash); children go before parents.
    public func prune(images: ImageStore) throws -> [String] {
        var needed = Set<String>()
        for row in try store.db.query("SELECT digest, media_type, size FROM images WHERE namespace = ?", [.text(store.namespace)]) {
            let d = Descriptor(mediaType: row[1].string, digest: row[0].string, size: Int(row[2].int))
            guard let m = try? images.manifest(for: d), let c = try? images.config(m) else { continue }
            var parent: String?
            for diff in c.rootfs.diff_ids {
                let chain = parent.map { "sha256:" + SHA256.hex(Array(($0 + " " + diff).utf8)) } ?? diff
                needed.insert(chain)
                parent = chain
            }
        }
        let owners = Set(try store.db.query("SELECT snapshot FROM containers WHERE namespace = ?", [.text(store.namespace)]).map { $0[0].string })
        var removed: [String] = []
        var changed = true
        while changed {
            changed = false
            let all = try list()
            let parents = Set(all.compactMap(\.parent))
            for s in all where !parents.contains(s.key) {
                let orphan = s.kind == "active" ? !owners.contains(s.key) : !needed.contains(s.key)
                if orphan || s.kind.hasSuffix("-pending") {
                    try? FileManager.default.removeItem(atPath: dir + "/\(s.id)")
                    try store.db.query("DELETE FROM snapshots WHERE namespace = ? AND key = ?", [.text(store.namespace), .text(s.key)])
                    removed.append(s.key)
                    changed = true
                }
            }
        }
        return removed
    }

    /// `images mount`: the image's layers read-only at `target` (an overlay of the chain).
    public func mountReadOnly(top: String, at target: String) throws {
        let lowers = try chain(top)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let data = lowers.count == 1 ? nil : "lowerdir=" + lowers.joined(separator: ":")
        let r = data == nil ? mount(lowers[0], target, nil, UInt(MS_BIND | MS_RDONLY), nil) : mount("overlay", target, "overlay", UInt(MS_RDONLY), data)
        if r != 0 { throw ManagerError("mount image", target, String(cString: strerror(errno))) }
        if data == nil && mount(nil, target, nil, UInt(MS_BIND | MS_RDONLY | MS_REMOUNT), nil) != 0 {
            let e = String(cString: strerror(errno)); umount2(target, Int32(MNT_DETACH))
            throw ManagerError("mount image", target, e)
        }
    }
}

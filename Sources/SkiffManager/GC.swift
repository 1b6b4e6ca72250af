import Foundation

/// Garbage collection in one place (containerd's metadata/gc.go): what is live is found by
/// walking references from the roots, and everything else of a kind is removed.
///
///     images (every namespace) ── manifest/index ── config, layers ──▶ content
///     leases (a pull in progress) ─────────────────────────────────────▶ content
///     images (this namespace) ── config's diff IDs ── chain IDs ───────▶ committed snapshots
///     containers (this namespace) ── snapshot key ─────────────────────▶ active snapshots
///
/// A snapshot is removed only when nothing is built on it (children first) and no command
/// holds its unpack lock.
public struct GarbageCollector {
    let store: Store
    public init(_ store: Store) { self.store = store }

    /// Digests any image in any namespace needs (blobs are shared across namespaces).
    public func referencedContent() throws -> Set<String> {
        let images = ImageStore(store)
        var keep = Set<String>()
        for row in try store.db.query("SELECT digest, media_type, size FROM images") {
            let d = Descriptor(mediaType: row[1].string, digest: row[0].string, size: Int(row[2].int))
            for b in try images.blobs(of: d).present { keep.insert(b.digest) }
        }
        return keep
    }

    /// `content prune`: blobs no image references and no lease holds; returns what went.
    public func pruneContent() throws -> [String] {
        let content = ContentStore(root: store.root)
        return try store.db.transaction {
            let keep = try referencedContent().union(try Leases(store).heldContent())
            let gone = content.all().filter { !keep.contains($0) }
            for d in gone { try content.remove(d) }
            return gone
        }
    }

    /// Chain IDs the images of this namespace need.
    func neededLayers() throws -> Set<String> {
        let images = ImageStore(store)
        var needed = Set<String>()
        for row in try store.db.query("SELECT digest, media_type, size FROM images WHERE namespace = ?", [.text(store.namespace)]) {
            let d = Descriptor(mediaType: row[1].string, digest: row[0].string, size: Int(row[2].int))
            guard let m = try? images.manifest(for: d), let c = try? images.config(m) else { continue }
            needed.formUnion(Snapshotter.chainIDs(c.rootfs.diff_ids))
        }
        return needed
    }

    /// `snapshots prune`: committed layers no image needs and active snapshots no container
    /// owns (leftovers of a crash), and pending ones nobody is unpacking; children first.
    public func pruneSnapshots(_ snapshots: Snapshotter) throws -> [String] {
        let needed = try neededLayers()
        let owners = try ContainerStore(store).snapshotKeys()
        var removed: [String] = []
        var changed = true
        while changed {
            changed = false
            let all = try snapshots.list()
            let parents = Set(all.compactMap(\.parent))
            for s in all where !parents.contains(s.key) {
                let orphan = s.kind == "active" ? !owners.contains(s.key) : !needed.contains(s.key)
                if orphan || s.kind.hasSuffix("-pending"), try snapshots.forgetIfIdle(s) {
                    removed.append(s.key)
                    changed = true
                }
            }
        }
        return removed
    }
}

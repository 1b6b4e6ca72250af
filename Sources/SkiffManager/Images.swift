import Foundation
import SkiffJSON
import SkiffSys

public struct ImageRecord {
    public var name: String
    public var target: Descriptor
    public var created: String
}

/// Images in the metadata store (names → target descriptors) and what they need from content;
/// archives are in ImageArchive.swift.
public struct ImageStore {
    let store: Store
    var content: ContentStore { ContentStore(root: store.root) }

    public init(_ store: Store) { self.store = store }

    public func list() throws -> [ImageRecord] {
        try store.db.query(
            "SELECT name, digest, media_type, size, created FROM images WHERE namespace = ? ORDER BY name",
            [.text(store.namespace)]
        ).map {
            ImageRecord(
                name: $0[0].string, target: Descriptor(mediaType: $0[2].string, digest: $0[1].string, size: Int($0[3].int)),
                created: $0[4].string)
        }
    }

    public func get(_ ref: String) throws -> ImageRecord {
        let name = try ImageRef.normalize(ref)
        guard let r = try list().first(where: { $0.name == name }) else {
            throw ManagerError("image", name, "not found", hint: "skiffctl images ls shows what is there; import or pull it")
        }
        return r
    }

    public func put(_ name: String, _ target: Descriptor) throws {
        let now = Store.now()
        try store.db.query(
            """
            INSERT INTO images(namespace, name, digest, media_type, size, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(namespace, name) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type,
            size = excluded.size, updated = excluded.updated
            """,
            [
                .text(store.namespace), .text(name), .text(target.digest), .text(target.mediaType), .int(Int64(target.size)),
                .text(now), .text(now)
            ])
    }

    public func remove(_ ref: String) throws {
        let name = try ImageRef.normalize(ref)
        try store.db.transaction {
            guard try !store.db.query("SELECT 1 FROM images WHERE namespace = ? AND name = ?", [.text(store.namespace), .text(name)]).isEmpty else {
                throw ManagerError("remove image", name, "not found")
            }
            try store.db.query("DELETE FROM images WHERE namespace = ? AND name = ?", [.text(store.namespace), .text(name)])
        }
    }

    public func tag(_ source: String, _ target: String, force: Bool) throws {
        let src = try get(source)
        let name = try ImageRef.normalize(target)
        if !force, (try? get(name)) != nil { throw ManagerError("tag", name, "already exists", hint: "pass --force to move it") }
        try put(name, src.target)
    }

    /// Imports an OCI image layout archive (`index.json` + `blobs/`): every blob is verified
    /// against its name before it enters the store; images are named by the index's
    /// `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations.
    @discardableResult
    /// The manifest for this machine (amd64/linux) from a target that may be an index.
    public func manifest(for target: Descriptor) throws -> ImageManifest {
        if MediaType.isIndex(target.mediaType) {
            let idx = try decodeJSON(ImageIndex.self, try content.readDocument(target.digest), what: "image index", target.digest)
            guard let m = idx.manifests.first(where: { ($0.platform?.architecture ?? "amd64") == "amd64" && ($0.platform?.os ?? "linux") == "linux" }) else {
                throw ManagerError("image", target.digest, "no linux/amd64 manifest in the index")
            }
            if MediaType.isIndex(m.mediaType) {
                throw ManagerError("image", target.digest, "its linux/amd64 entry \(m.digest) is itself an index (nested indexes are not supported)")
            }
            return try manifest(for: m)
        }
        return try decodeJSON(ImageManifest.self, try content.readDocument(target.digest), what: "image manifest", target.digest)
    }

    public func config(_ m: ImageManifest) throws -> ImageConfig {
        try decodeJSON(ImageConfig.self, try content.readDocument(m.config.digest), what: "image config", m.config.digest)
    }
}

extension ImageStore {
    /// Every blob an image needs that is present: the target, children of an index, configs, layers.
    func blobs(of target: Descriptor) throws -> (present: [Descriptor], missing: [Descriptor]) {
        var present: [Descriptor] = [], missing: [Descriptor] = []
        func walk(_ d: Descriptor, required: Bool) throws {
            guard content.exists(d.digest) else { if required { missing.append(d) }; return }
            present.append(d)
            // Only indexes and manifests are read (an index may list any blob, a layer too).
            let isManifest = d.mediaType == MediaType.ociManifest || d.mediaType == MediaType.dockerManifest
            guard MediaType.isIndex(d.mediaType) || isManifest else { return }
            let bytes = Data(try content.readDocument(d.digest))
            if MediaType.isIndex(d.mediaType) {
                let idx = try decodeJSON(ImageIndex.self, [UInt8](bytes), what: "image index", d.digest)
                // Platforms not pulled are not missing; the one that runs here is.
                for m in idx.manifests {
                    let here = (m.platform?.architecture ?? "amd64") == "amd64" && (m.platform?.os ?? "linux") == "linux"
                    try walk(m, required: here)
                }
            } else {
                let m = try decodeJSON(ImageManifest.self, [UInt8](bytes), what: "image manifest", d.digest)
                for b in [m.config] + m.layers {
                    if content.exists(b.digest) { present.append(b) } else { missing.append(b) }
                }
            }
        }
        try walk(target, required: true)
        return (present, missing)
    }

    /// For `images ls`: the stored size of what the image needs here, and its platforms.
    public func summary(_ image: ImageRecord) -> (size: Int, platforms: [String]) {
        let present = (try? blobs(of: image.target).present) ?? []
        let size = present.reduce(0) { $0 + $1.size }
        var platforms: [String] = []
        if MediaType.isIndex(image.target.mediaType), let b = try? content.readDocument(image.target.digest),
            let idx = try? JSONCoder.decode(ImageIndex.self, from: b)
        {
            platforms = idx.manifests.compactMap { $0.platform.map { $0.os + "/" + $0.architecture + ($0.variant.map { "/" + $0 } ?? "") } }
        } else if let m = try? manifest(for: image.target), let c = try? config(m) {
            platforms = [(c.os ?? "linux") + "/" + (c.architecture ?? "amd64")]
        }
        return (size, platforms)
    }

    /// `images check`: complete when every blob the image needs here is in the store.
    public func check(_ ref: String) throws -> (complete: Bool, present: Int, missing: Int) {
        let b = try blobs(of: try get(ref).target)
        return (b.missing.isEmpty, b.present.count, b.missing.count)
    }

}

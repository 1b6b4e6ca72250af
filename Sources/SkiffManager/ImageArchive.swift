import Foundation
import SkiffSys

/// Images to and from archives: OCI image layouts and `docker save` tars (import), OCI
/// layouts and docker-archive (export).
extension ImageStore {
    /// As ctr: `baseName` names what the archive names only by a tag (OCI ref.name `latest` is
    /// `<baseName>:latest`) or not at all; `indexName` keeps the archive's index itself as an image.
    public func importArchive(_ path: String, baseName: String? = nil, indexName: String? = nil) throws -> [String] {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw ManagerError("import", path, "cannot open") }
        defer { try? fh.close() }
        let tar = TarReader { n in [UInt8](fh.readData(ofLength: n)) }
        var index: ImageIndex?
        var indexBytes: [UInt8] = []
        var sawLayout = false
        while let h = try tar.next() {
            let name = h.name.hasPrefix("./") ? String(h.name.dropFirst(2)) : h.name
            guard case .file = h.kind else { continue }
            if name == "oci-layout" { sawLayout = true; continue }
            if name == "index.json" {
                let bytes = try ImageStore.smallBody(tar, h, name, path)
                indexBytes = bytes
                index = try decodeJSON(ImageIndex.self, bytes, what: "archive index", path)
            } else if name.hasPrefix("blobs/sha256/") {
                let digest = "sha256:" + name.dropFirst("blobs/sha256/".count)
                _ = try content.ingest(expected: digest) { piece in try tar.body(piece) }
            }
        }
        guard sawLayout, let index else {
            if let names = try importDockerArchive(path) { return names }
            throw ManagerError("import", path, "neither an OCI image layout archive (oci-layout, index.json) nor a docker-archive (manifest.json)")
        }
        var names: [String] = []
        for (i, m) in index.manifests.enumerated() {
            guard content.exists(m.digest) else { throw ManagerError("import", path, "index names \(m.digest), which the archive lacks") }
            var raw = m.annotations?["io.containerd.image.name"]
            if raw == nil, let ref = m.annotations?["org.opencontainers.image.ref.name"] {
                // The OCI layout spec lets ref.name be a bare tag (umoci writes "latest").
                if ref.contains("/") || ref.contains(":") {
                    raw = ref
                } else if let base = baseName {
                    raw = base + ":" + ref
                } else {
                    throw ManagerError(
                        "import", path, "the archive names an image only by the tag \(quote(ref))",
                        hint: "give --base-name NAME to import it as NAME:\(ref)")
                }
            }
            guard let name = raw ?? baseName.map({ index.manifests.count > 1 ? "\($0)-\(i)" : $0 }) else { continue }
            let normalized = try ImageRef.normalize(name)
            try put(normalized, m)
            names.append(normalized)
        }
        if let indexName {
            let digest = Digest.of(indexBytes)
            try content.write(indexBytes, expected: digest)
            let normalized = try ImageRef.normalize(indexName)
            try put(normalized, Descriptor(mediaType: MediaType.ociIndex, digest: digest, size: indexBytes.count))
            names.append(normalized)
        }
        return names
    }

    /// An archive's index.json or manifest.json, read whole: refused past the size a manifest
    /// may have (a member's size is the archive's to state).
    static func smallBody(_ tar: TarReader, _ h: TarHeader, _ name: String, _ path: String) throws -> [UInt8] {
        guard h.size <= RegistryClient.maxManifestSize else {
            throw ManagerError("import", path, "its \(name) is \(h.size) bytes, more than the \(RegistryClient.maxManifestSize >> 20) MiB allowed")
        }
        return try tar.body()
    }

    /// A `docker save` archive: manifest.json names each image's config and layer tars. Each
    /// becomes a Docker v2s2 manifest over the same (uncompressed) layers. nil if it is not one.
    func importDockerArchive(_ path: String) throws -> [String]? {
        guard let fh = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? fh.close() }
        let tar = TarReader { n in [UInt8](fh.readData(ofLength: n)) }
        // The files go to the content store as they come (digests computed); names remembered.
        var files: [String: (digest: String, size: Int)] = [:]
        var manifestJSON: [UInt8]?
        while let h = try tar.next() {
            guard case .file = h.kind else { continue }
            let name = h.name.hasPrefix("./") ? String(h.name.dropFirst(2)) : h.name
            if name == "manifest.json" { manifestJSON = try ImageStore.smallBody(tar, h, name, path); continue }
            if name.hasSuffix(".tar") || name.hasSuffix(".json") || name.hasPrefix("blobs/") {
                files[name] = try content.ingest(expected: nil) { piece in try tar.body(piece) }
            }
        }
        guard let manifestJSON else { return nil }
        struct Entry: Decodable { var Config: String; var RepoTags: [String]?; var Layers: [String] }
        let entries = try decodeJSON([Entry].self, manifestJSON, what: "manifest.json", path)
        var names: [String] = []
        for e in entries {
            guard let config = files[e.Config] else { throw ManagerError("import", path, "manifest.json names \(e.Config), which the archive lacks") }
            let layers: [Descriptor] = try e.Layers.map { l in
                guard let f = files[l] else { throw ManagerError("import", path, "manifest.json names \(l), which the archive lacks") }
                return Descriptor(mediaType: "application/vnd.docker.image.rootfs.diff.tar", digest: f.digest, size: f.size)
            }
            let manifest = ImageManifest(
                schemaVersion: 2, mediaType: MediaType.dockerManifest,
                config: Descriptor(mediaType: "application/vnd.docker.container.image.v1+json", digest: config.digest, size: config.size),
                layers: layers)
            let bytes = try encodeJSON(manifest)
            let digest = Digest.of(bytes)
            try content.write(bytes, expected: digest)
            for tag in e.RepoTags ?? [] {
                let name = try ImageRef.normalize(tag)
                try put(name, Descriptor(mediaType: MediaType.dockerManifest, digest: digest, size: bytes.count))
                names.append(name)
            }
        }
        return names
    }

    /// `images export`: an OCI image layout archive with the images' blobs and names.
    public func export(_ refs: [String], to path: String) throws {
        var manifests: [Descriptor] = []
        var blobSet: [String: Descriptor] = [:]
        for ref in refs {
            let image = try get(ref)
            var d = image.target
            d.annotations = ["io.containerd.image.name": image.name, "org.opencontainers.image.ref.name": image.name]
            manifests.append(d)
            for b in try blobs(of: image.target).present { blobSet[b.digest] = b }
        }
        let index = ImageIndex(schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: manifests)
        let w = try TarWriter(path: path)
        do {
            try w.add("oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            try w.add("index.json", try encodeJSON(index))
            for digest in blobSet.keys.sorted() { try w.add("blobs/sha256/" + digest.dropFirst(7), blob: digest, from: content) }
            try w.finish()
        } catch {
            w.abandon()
            throw error
        }
    }

    /// A layer's uncompressed bytes, chunk by chunk, checked against its diff ID at the end (a
    /// mismatch is an error, and the archive is removed).
    func uncompressed(_ layer: Descriptor, _ diffID: String, _ body: ([UInt8]) throws -> Void) throws {
        let stream = try LayerStream(path: try content.path(layer.digest), mediaType: layer.mediaType)
        while true {
            let chunk = try stream.read(1 << 20)
            if chunk.isEmpty { break }
            try body(chunk)
        }
        guard try stream.finish() == diffID else { throw ManagerError("export", layer.digest, "uncompressed layer does not match its diff ID") }
    }

    /// `images export --format docker`: a `docker save` archive (manifest.json, config, and each
    /// layer as an uncompressed tar named by its diff ID), for `docker load` and docker-archive tools.
    public func exportDocker(_ refs: [String], to path: String) throws {
        struct Entry: Encodable { var Config: String; var RepoTags: [String]; var Layers: [String] }
        var entries: [Entry] = []
        let w = try TarWriter(path: path)
        var written = Set<String>()
        do {
            for ref in refs {
                let image = try get(ref)
                let m = try manifest(for: image.target)
                let c = try config(m)
                let configName = String(m.config.digest.dropFirst(7)) + ".json"
                if written.insert(configName).inserted { try w.add(configName, blob: m.config.digest, from: content) }
                var layers: [String] = []
                for (layer, diffID) in zip(m.layers, c.rootfs.diff_ids) {
                    let name = String(diffID.dropFirst(7)) + "/layer.tar"
                    layers.append(name)
                    guard written.insert(name).inserted else { continue }
                    // Uncompressed as it is written, and checked against its diff ID at the end
                    // (a mismatch removes the archive). Where the header cannot be written again
                    // (a pipe), a first pass counts the size.
                    var size: Int?
                    if !w.seekable {
                        var n = 0
                        try uncompressed(layer, diffID) { n += $0.count }
                        size = n
                    }
                    try w.add(name, size: size) { write in try uncompressed(layer, diffID) { chunk in try chunk.withUnsafeBytes { try write($0) } } }
                }
                // Docker names: docker.io/library/x:t is written x:t, as docker save does.
                var tag = image.name
                for prefix in ["docker.io/library/", "docker.io/"] where tag.hasPrefix(prefix) { tag = String(tag.dropFirst(prefix.count)); break }
                entries.append(Entry(Config: configName, RepoTags: [tag], Layers: layers))
            }
            try w.add("manifest.json", try encodeJSON(entries))
            try w.finish()
        } catch {
            w.abandon()
            throw error
        }
    }
}

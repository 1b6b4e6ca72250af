import Foundation
import SkiffSys

/// OCI image-spec documents (Docker v2s2 media types read the same way).
public struct Descriptor: Codable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int
    public var annotations: [String: String]?
    public var platform: Platform?
}

public struct Platform: Codable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?
}

public struct ImageIndex: Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
}

public struct ImageManifest: Codable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
}

public struct ImageConfig: Codable {
    public struct Config: Codable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
    }
    public struct RootFS: Codable { public var type: String; public var diff_ids: [String] }
    public var architecture: String?
    public var os: String?
    public var config: Config?
    public var rootfs: RootFS
}

public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static func isIndex(_ m: String) -> Bool { m == ociIndex || m == dockerList }
}

/// Docker-style reference normalization: `busybox` → `docker.io/library/busybox:latest`.
public enum ImageRef {
    public static func normalize(_ ref: String) throws -> String {
        guard !ref.isEmpty, !ref.contains(" "), ref == ref.lowercased() || ref.contains("@") || ref.contains(":") else {
            throw ManagerError("parse reference", ref, "invalid reference format")
        }
        var name = ref
        var suffix = ""
        if let at = ref.firstIndex(of: "@") {
            name = String(ref[..<at]); suffix = String(ref[at...])
            _ = try ContentStore.validateDigest(String(suffix.dropFirst()))
        } else if let colon = ref.lastIndex(of: ":"), !ref[ref.index(after: colon)...].contains("/") {
            name = String(ref[..<colon]); suffix = String(ref[colon...])
            if suffix.count < 2 { throw ManagerError("parse reference", ref, "empty tag") }
        } else {
            suffix = ":latest"
        }
        guard !name.isEmpty, name == name.lowercased(), !name.hasPrefix("/"), !name.hasSuffix("/"), !name.contains("//") else {
            throw ManagerError("parse reference", ref, "invalid reference format", hint: "repository names are lowercase")
        }
        var parts = name.split(separator: "/").map(String.init)
        let hasHost = parts.count > 1 && (parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost")
        if !hasHost { parts.insert("docker.io", at: 0) }
        if parts[0] == "docker.io" && parts.count == 2 { parts.insert("library", at: 1) }
        return parts.joined(separator: "/") + suffix
    }
}

public struct ImageRecord {
    public var name: String
    public var target: Descriptor
    public var created: String
}

/// Images in the metadata store, and import from an OCI layout archive.
public struct ImageStore {
    let store: Store
    var content: ContentStore { ContentStore(root: store.root) }

    public init(_ store: Store) { self.store = store }

    public func list() throws -> [ImageRecord] {
        try store.db.query("SELECT name, digest, media_type, size, created FROM images WHERE namespace = ? ORDER BY name",
                           [.text(store.namespace)]).map {
            ImageRecord(name: $0[0].string, target: Descriptor(mediaType: $0[2].string, digest: $0[1].string, size: Int($0[3].int)),
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
        try store.db.query("""
            INSERT INTO images(namespace, name, digest, media_type, size, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(namespace, name) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type,
            size = excluded.size, updated = excluded.updated
            """, [.text(store.namespace), .text(name), .text(target.digest), .text(target.mediaType), .int(Int64(target.size)),
                  .text(now), .text(now)])
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
                let bytes = try tar.body()
                indexBytes = bytes
                index = try decodeJSON(ImageIndex.self, bytes, what: "archive index", path)
            } else if name.hasPrefix("blobs/sha256/") {
                let digest = "sha256:" + name.dropFirst("blobs/sha256/".count)
                try content.write(try tar.body(), expected: digest)
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
                if ref.contains("/") || ref.contains(":") { raw = ref } else if let base = baseName {
                    raw = base + ":" + ref
                } else {
                    throw ManagerError("import", path, "the archive names an image only by the tag \(quote(ref))",
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
            let body = try tar.body()
            if name == "manifest.json" { manifestJSON = body; continue }
            if name.hasSuffix(".tar") || name.hasSuffix(".json") || name.hasPrefix("blobs/") {
                let digest = Digest.of(body)
                try content.write(body, expected: digest)
                files[name] = (digest, body.count)
            }
        }
        guard let manifestJSON else { return nil }
        struct Entry: Decodable { var Config: String; var RepoTags: [String]?; var Layers: [String] }
        let entries = try JSONDecoder().decode([Entry].self, from: Data(manifestJSON))
        var names: [String] = []
        for e in entries {
            guard let config = files[e.Config] else { throw ManagerError("import", path, "manifest.json names \(e.Config), which the archive lacks") }
            let layers: [Descriptor] = try e.Layers.map { l in
                guard let f = files[l] else { throw ManagerError("import", path, "manifest.json names \(l), which the archive lacks") }
                return Descriptor(mediaType: "application/vnd.docker.image.rootfs.diff.tar", digest: f.digest, size: f.size)
            }
            let manifest = ImageManifest(schemaVersion: 2, mediaType: MediaType.dockerManifest,
                                         config: Descriptor(mediaType: "application/vnd.docker.container.image.v1+json", digest: config.digest, size: config.size),
                                         layers: layers)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let bytes = [UInt8](try enc.encode(manifest))
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

    /// The manifest for this machine (amd64/linux) from a target that may be an index.
    public func manifest(for target: Descriptor) throws -> ImageManifest {
        if MediaType.isIndex(target.mediaType) {
            let idx = try decodeJSON(ImageIndex.self, try content.read(target.digest), what: "image index", target.digest)
            guard let m = idx.manifests.first(where: { ($0.platform?.architecture ?? "amd64") == "amd64" && ($0.platform?.os ?? "linux") == "linux" }) else {
                throw ManagerError("image", target.digest, "no linux/amd64 manifest in the index")
            }
            if MediaType.isIndex(m.mediaType) {
                throw ManagerError("image", target.digest, "its linux/amd64 entry \(m.digest) is itself an index (nested indexes are not supported)")
            }
            return try manifest(for: m)
        }
        return try decodeJSON(ImageManifest.self, try content.read(target.digest), what: "image manifest", target.digest)
    }

    public func config(_ m: ImageManifest) throws -> ImageConfig {
        try decodeJSON(ImageConfig.self, try content.read(m.config.digest), what: "image config", m.config.digest)
    }
}

extension ImageStore {
    /// Every blob an image needs that is present: the target, children of an index, configs, layers.
    func blobs(of target: Descriptor) throws -> (present: [Descriptor], missing: [Descriptor]) {
        var present: [Descriptor] = [], missing: [Descriptor] = []
        func walk(_ d: Descriptor, required: Bool) throws {
            guard content.exists(d.digest) else { if required { missing.append(d) }; return }
            present.append(d)
            let bytes = Data(try content.read(d.digest))
            if MediaType.isIndex(d.mediaType) {
                let idx = try decodeJSON(ImageIndex.self, [UInt8](bytes), what: "image index", d.digest)
                // Platforms not pulled are not missing; the one that runs here is.
                for m in idx.manifests {
                    let here = (m.platform?.architecture ?? "amd64") == "amd64" && (m.platform?.os ?? "linux") == "linux"
                    try walk(m, required: here)
                }
            } else if d.mediaType == MediaType.ociManifest || d.mediaType == MediaType.dockerManifest {
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
        if MediaType.isIndex(image.target.mediaType), let b = try? content.read(image.target.digest),
           let idx = try? JSONDecoder().decode(ImageIndex.self, from: Data(b)) {
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
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var w = try TarWriter(path: path)
        do {
            try w.add("oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            try w.add("index.json", [UInt8](try enc.encode(index)))
            for digest in blobSet.keys.sorted() { try w.add("blobs/sha256/" + digest.dropFirst(7), try content.read(digest)) }
            try w.finish()
        } catch {
            w.abandon()
            throw error
        }
    }

    /// `images export --format docker`: a `docker save` archive (manifest.json, config, and each
    /// layer as an uncompressed tar named by its diff ID), for `docker load` and docker-archive tools.
    public func exportDocker(_ refs: [String], to path: String) throws {
        struct Entry: Encodable { var Config: String; var RepoTags: [String]; var Layers: [String] }
        var entries: [Entry] = []
        var w = try TarWriter(path: path)
        var written = Set<String>()
        do {
            for ref in refs {
                let image = try get(ref)
                let m = try manifest(for: image.target)
                let c = try config(m)
                let configName = String(m.config.digest.dropFirst(7)) + ".json"
                if written.insert(configName).inserted { try w.add(configName, try content.read(m.config.digest)) }
                var layers: [String] = []
                for (layer, diffID) in zip(m.layers, c.rootfs.diff_ids) {
                    let name = String(diffID.dropFirst(7)) + "/layer.tar"
                    layers.append(name)
                    guard written.insert(name).inserted else { continue }
                    let stream = try LayerStream(path: try content.path(layer.digest), mediaType: layer.mediaType)
                    var tar: [UInt8] = []
                    while true { let chunk = try stream.read(1 << 20); if chunk.isEmpty { break }; tar += chunk }
                    guard try stream.finish() == diffID else { throw ManagerError("export", layer.digest, "uncompressed layer does not match its diff ID") }
                    try w.add(name, tar)
                }
                // Docker names: docker.io/library/x:t is written x:t, as docker save does.
                var tag = image.name
                for prefix in ["docker.io/library/", "docker.io/"] where tag.hasPrefix(prefix) { tag = String(tag.dropFirst(prefix.count)); break }
                entries.append(Entry(Config: configName, RepoTags: [tag], Layers: layers))
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.withoutEscapingSlashes]
            try w.add("manifest.json", [UInt8](try enc.encode(entries)))
            try w.finish()
        } catch {
            w.abandon()
            throw error
        }
    }
}

/// Writes a ustar archive (names up to 100 bytes; OCI layout names fit).
struct TarWriter {
    let path: String
    let fh: FileHandle

    init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let fh = FileHandle(forWritingAtPath: path) else {
            throw ManagerError("export", path, "cannot create")
        }
        self.fh = fh
    }

    mutating func add<S: StringProtocol>(_ name: S, _ data: [UInt8]) throws {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) { for (i, b) in s.utf8.prefix(len).enumerated() { h[at + i] = b } }
        guard name.utf8.count <= 100 else { throw ManagerError("export", String(name), "name too long for ustar") }
        put(String(name), 0, 100)
        put("0000644\0", 100, 8); put("0000000\0", 108, 8); put("0000000\0", 116, 8)
        put(String(format: "%011o\0", data.count), 124, 12)
        put("00000000000\0", 136, 12)
        put("        ", 148, 8)
        h[156] = UInt8(ascii: "0")
        put("ustar\0", 257, 6); put("00", 263, 2)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o\0 ", sum), 148, 8)
        fh.write(Data(h))
        fh.write(Data(data))
        let pad = (512 - data.count % 512) % 512
        if pad > 0 { fh.write(Data(count: pad)) }
    }

    func finish() throws {
        fh.write(Data(count: 1024))
        try fh.close()
    }

    func abandon() {
        try? fh.close()
        unlink(path)
    }
}

/// JSON of an image (index, manifest, config) decoded, or an error that names the object and
/// says what is wrong with it instead of Foundation's DecodingError dump.
func decodeJSON<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String, _ object: String) throws -> T {
    do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch let e as DecodingError {
        let cause: String
        switch e {
        case .dataCorrupted(let c) where c.codingPath.isEmpty: cause = "not valid JSON"
        case .dataCorrupted(let c): cause = "bad value at \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        case .keyNotFound(let k, let c): cause = "missing field \((c.codingPath + [k]).map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            cause = "field \(c.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
        @unknown default: cause = "cannot be decoded"
        }
        throw ManagerError("read \(what)", object, cause)
    }
}

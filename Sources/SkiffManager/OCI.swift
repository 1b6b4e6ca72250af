import Foundation
import SkiffJSON
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

/// JSON of an image (index, manifest, config) decoded, or an error that names the object and
/// says what is wrong with it. The manager's one JSON path is SkiffJSON's (as the runtime's and the
/// shim's): Codable types through JSONCoder, untyped documents as JSONValue.
func decodeJSON<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String, _ object: String) throws -> T {
    do { return try JSONCoder.decode(type, from: bytes) } catch let e as JSONDecodeError { throw ManagerError("read \(what)", object, "\(e)") }
}

/// Encodes for the store and for archives: compact, keys in declaration order (digests of what
/// skiffctl writes depend on it, so it never varies).
func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONCoder.encode(value).utf8) }

import Foundation
import SkiffSys

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

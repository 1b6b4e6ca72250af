import Foundation
import SkiffSys

/// Where skiffctl keeps things: `root` (content, snapshots, metadata) and `state` (bundles and
/// shim sockets), from config.toml or flags. Every command opens the store itself: no daemon.
public final class Store {
    public let root: String
    public let state: String
    public let namespace: String
    public let db: Database
    /// config `snapshotter` (overlayfs or native); nil = overlayfs when the kernel has it.
    public var snapshotter: String?

    public static let defaultRoot = "/var/lib/skiff"
    public static let defaultState = "/run/skiff"
    public static let defaultConfigPath = "/etc/skiff/config.toml"

    public static var defaultConfig: String {
        """
        # skiffctl configuration
        root = "\(defaultRoot)"
        state = "\(defaultState)"
        # snapshotter = "overlayfs"   # or "native" (copies; for hosts without overlayfs)

        """
    }

    public init(root: String, state: String, namespace: String) throws {
        self.root = root
        self.state = state
        self.namespace = namespace
        try Store.validateName(namespace, what: "namespace")
        // Made once; later commands only look (one stat each).
        for d in [root + "/content/blobs/sha256", root + "/content/ingest", root + "/snapshots", state] where access(d, F_OK) != 0 {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        db = try Database(path: root + "/meta.db")
        try db.query("INSERT OR IGNORE INTO namespaces(name, created) VALUES (?, ?)", [.text(namespace), .text(Store.now())])
    }

    /// root/state from a config file: `key = "value"` lines (the subset skiffctl's config uses).
    public static func readConfig(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty || line.hasPrefix("[") { continue }
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[1].hasPrefix("\""), kv[1].hasSuffix("\""), kv[1].count >= 2 else {
                throw ManagerError("read config", path, "line \(n + 1): expected key = \"value\"")
            }
            out[kv[0]] = String(kv[1].dropFirst().dropLast())
        }
        return out
    }

    /// containerd's identifier rule: [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters.
    public static func validateName(_ s: String, what: String) throws {
        let ok = !s.isEmpty && s.count <= 76 && s.first!.isASCIILetterOrDigit && s.last!.isASCIILetterOrDigit
            && s.allSatisfy { $0.isASCIILetterOrDigit || $0 == "." || $0 == "_" || $0 == "-" }
            && !s.contains("..") && !s.contains("--") && !s.contains("__")
        if !ok { throw ManagerError("invalid \(what)", s, "must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters") }
    }

    /// RFC 3339 UTC from the clock (Foundation's formatters load time zone files: ~3 ms).
    static func now() -> String { rfc3339Now() }

    // MARK: namespaces

    public func namespaces() throws -> [String] {
        try db.query("SELECT name FROM namespaces ORDER BY name").map { $0[0].string }
    }

    public func createNamespace(_ name: String) throws {
        try Store.validateName(name, what: "namespace")
        try db.query("INSERT OR IGNORE INTO namespaces(name, created) VALUES (?, ?)", [.text(name), .text(Store.now())])
    }

    /// Refuses a namespace that still holds images or containers.
    public func removeNamespace(_ name: String) throws {
        try db.transaction {
            let images = try db.query("SELECT count(*) FROM images WHERE namespace = ?", [.text(name)])[0][0].int
            let containers = try db.query("SELECT count(*) FROM containers WHERE namespace = ?", [.text(name)])[0][0].int
            let snapshots = try db.query("SELECT count(*) FROM snapshots WHERE namespace = ?", [.text(name)])[0][0].int
            if images + containers + snapshots > 0 {
                throw ManagerError("remove namespace", name, "not empty: \(images) images, \(containers) containers, \(snapshots) snapshots",
                                   hint: "remove them first")
            }
            try db.query("DELETE FROM namespaces WHERE name = ?", [.text(name)])
        }
    }
}

extension Character {
    var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
}

import Foundation
import SkiffSys
import SkiffSpec

/// Where skiffctl keeps things: `root` (content, snapshots, metadata) and `state` (bundles and
/// shim sockets), from config.toml or flags. Every command opens the store itself: no daemon.
public final class Store {
    public let root: String
    public let state: String
    public let namespace: String
    public let db: Database
    /// The root is on a read-only filesystem: reading commands work, writing ones fail clearly.
    public let readOnly: Bool
    /// config `snapshotter` (overlayfs or native); nil = overlayfs when the kernel has it.
    public var snapshotter: String?

    /// /var/lib/skiff and /run/skiff; the user's own for a user who is not root (UserSession).
    public static var defaultRoot: String { UserSession.defaultRoot }
    public static var defaultState: String { UserSession.defaultState }
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
        // A store on a read-only filesystem still answers what only reads (images ls, content ls).
        readOnly = FS.isDirectory(root) && access(root, W_OK) != 0 && errno == EROFS
        if readOnly {
            db = try Database(path: root + "/meta.db", readOnly: true)
            return
        }
        for (d, mode) in Store.layout(root: root, state: state) { try Store.ensureDirectory(d, mode: mode) }
        db = try Database(path: root + "/meta.db")
        try db.query("INSERT OR IGNORE INTO namespaces(name, created) VALUES (?, ?)", [.text(namespace), .text(Store.now())])
    }

    /// The store's directories and their modes. Nothing in it is for other local users
    /// (CVE-2021-41103): snapshots hold image files as they are (setuid binaries, device nodes),
    /// content and metadata hold configs with their environment, bundles hold configs and the
    /// mounted rootfs. So root and state are 0700; the runtime opens what a container in a user
    /// namespace needs before that namespace exists.
    static func layout(root: String, state: String) -> [(String, mode_t)] {
        [
            (root, 0o700), (root + "/content", 0o700), (root + "/content/blobs", 0o700), (root + "/content/blobs/sha256", 0o700),
            (root + "/content/ingest", 0o700), (root + "/snapshots", 0o700), (state, 0o700)
        ]
    }

    /// Makes `path` a directory of ours with exactly `mode`; an existing one is tightened (stores
    /// made by earlier versions were 0755). One stat when all is well.
    static func ensureDirectory(_ path: String, mode: mode_t) throws {
        var st = stat()
        if lstat(path, &st) != 0 {
            guard errno == ENOENT else { throw ManagerError("open store directory", path, String(cString: strerror(errno))) }
            try FS.mkdirAll(FS.dirname(path), mode: 0o755)
            if mkdir(path, mode) != 0 && errno != EEXIST { throw ManagerError("create store directory", path, String(cString: strerror(errno))) }
            chmod(path, mode)  // whatever the umask took away or left
            return
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw ManagerError("open store directory", path, "not a directory", hint: "--root and --state name directories")
        }
        guard st.st_uid == geteuid() else {
            throw ManagerError(
                "open store directory", path, "owned by uid \(st.st_uid), not by us (uid \(geteuid()))",
                hint: "another user could change what this store holds; use a directory of your own")
        }
        if st.st_mode & 0o7777 != mode && chmod(path, mode) != 0 {
            throw ManagerError("tighten store directory", path, String(cString: strerror(errno)))
        }
    }

    /// root, state and snapshotter from config.toml: its top-level strings (through the same
    /// TOML reader as hosts.toml). A missing file is an empty config.
    public static func readConfig(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in try TOML.parse(text, file: path, what: "config").top {
            guard case .string(let s) = v else { throw ManagerError("read config", path, "\(k) takes a quoted string") }
            out[k] = s
        }
        return out
    }

    /// containerd's identifier rule: [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters.
    public static func validateName(_ s: String, what: String) throws {
        if !Identifier.isValid(s) { throw ManagerError("invalid \(what)", s, "must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters") }
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
                throw ManagerError(
                    "remove namespace", name, "not empty: \(images) images, \(containers) containers, \(snapshots) snapshots",
                    hint: "remove them first")
            }
            try db.query("DELETE FROM namespaces WHERE name = ?", [.text(name)])
        }
    }
}

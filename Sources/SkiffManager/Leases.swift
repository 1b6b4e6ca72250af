import Foundation

/// Leases keep content from the garbage collector while something is using it without an image
/// record yet (a pull in progress), or for as long as a user asks. Expired leases are dropped by
/// the next prune.
public struct Leases {
    let store: Store
    public init(_ store: Store) { self.store = store }

    public struct Lease { public var id: String; public var created: String; public var expires: Int64; public var resources: [String] }

    public func create(id: String, expiresIn seconds: Int64, content: [String] = []) throws {
        try Store.validateName(id, what: "lease id")
        try store.db.transaction {
            if try !store.db.query("SELECT 1 FROM leases WHERE namespace = ? AND id = ?", [.text(store.namespace), .text(id)]).isEmpty {
                throw ManagerError("create lease", id, "already exists")
            }
            try store.db.query(
                "INSERT INTO leases(namespace, id, created, expires) VALUES (?, ?, ?, ?)",
                [.text(store.namespace), .text(id), .text(Store.now()), .int(Int64(Date().timeIntervalSince1970) + seconds)])
            for d in content { try add(id, content: d) }
        }
    }

    public func add(_ id: String, content digest: String) throws {
        _ = try ContentStore.validateDigest(digest)
        try store.db.query(
            "INSERT OR IGNORE INTO lease_resources(namespace, lease, kind, key) VALUES (?, ?, 'content', ?)",
            [.text(store.namespace), .text(id), .text(digest)])
    }

    public func remove(_ id: String) throws {
        try store.db.transaction {
            try store.db.query("DELETE FROM lease_resources WHERE namespace = ? AND lease = ?", [.text(store.namespace), .text(id)])
            try store.db.query("DELETE FROM leases WHERE namespace = ? AND id = ?", [.text(store.namespace), .text(id)])
        }
    }

    public func list() throws -> [Lease] {
        try store.db.query("SELECT id, created, expires FROM leases WHERE namespace = ? ORDER BY id", [.text(store.namespace)]).map { row in
            let res = try store.db.query(
                "SELECT key FROM lease_resources WHERE namespace = ? AND lease = ?",
                [.text(store.namespace), .text(row[0].string)]
            ).map { $0[0].string }
            return Lease(id: row[0].string, created: row[1].string, expires: row[2].int, resources: res)
        }
    }

    /// Content any live lease (in any namespace) holds; expired leases are removed first.
    func heldContent() throws -> Set<String> {
        let now = Int64(Date().timeIntervalSince1970)
        try store.db.query("DELETE FROM lease_resources WHERE (namespace, lease) IN (SELECT namespace, id FROM leases WHERE expires < ?)", [.int(now)])
        try store.db.query("DELETE FROM leases WHERE expires < ?", [.int(now)])
        return Set(try store.db.query("SELECT key FROM lease_resources WHERE kind = 'content'").map { $0[0].string })
    }
}

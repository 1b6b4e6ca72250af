import Foundation
import CSQLite

/// A thin SQLite connection: WAL journal and a busy timeout, so concurrent skiffctl commands
/// wait for each other instead of failing; writes go through `transaction`.
public final class Database {
    let db: OpaquePointer

    public init(path: String, readOnly: Bool = false) throws {
        var handle: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        // A read-only store (its filesystem is): immutable=1 reads the WAL-mode file without a -shm.
        let rc = sqlite3_open_v2(readOnly ? "file:\(path)?immutable=1" : path, &handle, flags | (readOnly ? SQLITE_OPEN_URI : 0), nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite3_close(handle) }
            throw ManagerError("open metadata database", path, msg)
        }
        db = handle
        sqlite3_busy_timeout(db, 10_000)
        if readOnly { return }
        // Switching a new database to WAL takes an exclusive lock the busy handler does not wait
        // for: commands opening a fresh store together retry it.
        for attempt in 0..<100 {
            do { try exec("PRAGMA journal_mode=WAL"); break } catch let e as ManagerError where e.cause.contains("locked") && attempt < 99 {
                usleep(20_000)
            }
        }
        // Container specs (their environment) live here: the owner's alone.
        for f in [path, path + "-wal", path + "-shm"] { chmod(f, 0o600) }
        // WAL with NORMAL sync: commits stay atomic and the database consistent; no fsync per command.
        try exec("PRAGMA synchronous=NORMAL")
        try exec("PRAGMA foreign_keys=ON")
        // The schema once per database (user_version marks it), not on every command.
        if try query("PRAGMA user_version").first?.first?.int != Database.schemaVersion {
            try transaction {
                try exec(Database.schema)
                // v3: the snapshotter a container's snapshot belongs to (older stores: overlayfs or
                // native by the key's prefix).
                if try !query("PRAGMA table_info(containers)").contains(where: { $0.count > 1 && $0[1].string == "snapshotter" }) {
                    try exec("ALTER TABLE containers ADD COLUMN snapshotter TEXT NOT NULL DEFAULT 'overlayfs'")
                    try exec(
                        "UPDATE containers SET snapshotter = 'native' WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.namespace = containers.namespace AND s.key = 'native:' || containers.snapshot)"
                    )
                }
                // v4: snapshots say their snapshotter in a column (the key is the key; v3 wrote
                // native ones as "native:<key>"): the table is rebuilt, as the key is part of its
                // primary key.
                if try !query("PRAGMA table_info(snapshots)").contains(where: { $0.count > 1 && $0[1].string == "snapshotter" }) {
                    try exec(
                        """
                        CREATE TABLE snapshots_v4(namespace TEXT NOT NULL, snapshotter TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL UNIQUE,
                            parent TEXT, kind TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY(namespace, snapshotter, key));
                        INSERT INTO snapshots_v4 SELECT namespace,
                            CASE WHEN key LIKE 'native:%' THEN 'native' ELSE 'overlayfs' END,
                            CASE WHEN key LIKE 'native:%' THEN substr(key, 8) ELSE key END, id,
                            CASE WHEN parent LIKE 'native:%' THEN substr(parent, 8) ELSE parent END, kind, created FROM snapshots;
                        DROP TABLE snapshots;
                        ALTER TABLE snapshots_v4 RENAME TO snapshots;
                        """)
                }
                // v5: the highest snapshot id ever given, so that none is given twice.
                try exec("INSERT INTO snapshot_ids SELECT (SELECT coalesce(max(id), 0) FROM snapshots) WHERE NOT EXISTS (SELECT 1 FROM snapshot_ids)")
                try exec("PRAGMA user_version=\(Database.schemaVersion)")
            }
        }
    }

    deinit { sqlite3_close(db) }

    static let schemaVersion: Int64 = 5
    static let schema = """
        CREATE TABLE IF NOT EXISTS namespaces(name TEXT PRIMARY KEY, created TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS images(namespace TEXT NOT NULL REFERENCES namespaces(name), name TEXT NOT NULL,
            digest TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
            PRIMARY KEY(namespace, name));
        CREATE TABLE IF NOT EXISTS snapshots(namespace TEXT NOT NULL, snapshotter TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL UNIQUE,
            parent TEXT, kind TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY(namespace, snapshotter, key));
        CREATE TABLE IF NOT EXISTS containers(namespace TEXT NOT NULL REFERENCES namespaces(name), id TEXT NOT NULL,
            image TEXT NOT NULL, snapshot TEXT NOT NULL, runtime TEXT NOT NULL, spec BLOB NOT NULL, created TEXT NOT NULL,
            snapshotter TEXT NOT NULL DEFAULT 'overlayfs', PRIMARY KEY(namespace, id));
        CREATE TABLE IF NOT EXISTS leases(namespace TEXT NOT NULL, id TEXT NOT NULL, created TEXT NOT NULL, expires INTEGER NOT NULL,
            PRIMARY KEY(namespace, id));
        CREATE TABLE IF NOT EXISTS snapshot_ids(last INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS lease_resources(namespace TEXT NOT NULL, lease TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
            PRIMARY KEY(namespace, lease, kind, key));
        """

    func message() -> String { String(cString: sqlite3_errmsg(db)) }

    public func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &err) != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? message()
            sqlite3_free(err)
            throw ManagerError("metadata", nil, msg)
        }
    }

    public enum Value {
        case text(String), int(Int64), blob([UInt8]), null
    }

    /// Runs one statement; returns its rows (each a column array).
    @discardableResult
    public func query(_ sql: String, _ args: [Value] = []) throws -> [[Value]] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { throw ManagerError("metadata", nil, message()) }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, a) in args.enumerated() {
            let n = Int32(i + 1)
            switch a {
            case .text(let s): sqlite3_bind_text(stmt, n, s, -1, transient)
            case .int(let v): sqlite3_bind_int64(stmt, n, v)
            case .blob(let b): b.withUnsafeBytes { _ = sqlite3_bind_blob(stmt, n, $0.baseAddress, Int32(b.count), transient) }
            case .null: sqlite3_bind_null(stmt, n)
            }
        }
        var rows: [[Value]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw ManagerError("metadata", nil, message()) }
            var row: [Value] = []
            for c in 0..<sqlite3_column_count(stmt) {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_NULL: row.append(.null)
                case SQLITE_BLOB:
                    let n = Int(sqlite3_column_bytes(stmt, c))
                    let p = sqlite3_column_blob(stmt, c)
                    row.append(.blob(p.map { Array(UnsafeRawBufferPointer(start: $0, count: n)) } ?? []))
                default: row.append(.text(String(cString: sqlite3_column_text(stmt, c))))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// BEGIN IMMEDIATE takes the write lock up front: two commands never interleave a change.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try exec("BEGIN IMMEDIATE")
        do {
            let v = try body()
            try exec("COMMIT")
            return v
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }
}

extension Database.Value {
    public var string: String {
        switch self {
        case .text(let s): return s
        case .int(let i): return String(i)
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .null: return ""
        }
    }
    public var int: Int64 { if case .int(let i) = self { return i }; return Int64(string) ?? 0 }
    public var bytes: [UInt8] { if case .blob(let b) = self { return b }; return Array(string.utf8) }
}

/// The manager's error convention: operation, object, cause, hint.
public struct ManagerError: Error, CustomStringConvertible {
    public var op: String
    public var object: String?
    public var cause: String
    public var hint: String?

    public init(_ op: String, _ object: String?, _ cause: String, hint: String? = nil) {
        self.op = op; self.object = object; self.cause = cause; self.hint = hint
    }

    public var description: String {
        var s = op
        if let object { s += " \"\(object)\"" }
        s += ": " + cause
        if let hint { s += " (hint: \(hint))" }
        return s
    }
}

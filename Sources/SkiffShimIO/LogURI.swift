import Glibc
import SkiffSys
import CSkiffSys

/// Where a task's stdio goes, from the URIs containerd passes (`ctr run --log-uri`): FIFO paths
/// (the default), `file:///path` (appended, with optional size-based rotation given as
/// `?maxsize=BYTES&maxfiles=N`, a skiff extension) and `binary:///path?k=v` (a logger process).
public enum LogTarget: Equatable, Sendable {
    case fifo(String)
    case file(path: String, maxSize: Int?, maxFiles: Int)
    case binary(path: String, args: [String: String])
    case none

    public static func parse(_ s: String) throws -> LogTarget {
        if s.isEmpty { return .none }
        guard let schemeEnd = s.range(of: "://") else { return .fifo(s) }
        let scheme = String(s[..<schemeEnd.lowerBound])
        var rest = String(s[schemeEnd.upperBound...])
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { percentDecode(String($0)) }
                query[kv[0]] = kv.count > 1 ? kv[1] : ""
            }
            rest = String(rest[..<q])
        }
        let path = percentDecode(rest)
        guard path.hasPrefix("/") else { throw SkiffError.msg("log uri \(quote(s)): the path must be absolute") }
        switch scheme {
        case "file":
            var maxSize: Int?
            if let m = query["maxsize"] {
                guard let v = Int(m), v > 0 else { throw SkiffError.msg("log uri \(quote(s)): maxsize must be a positive number of bytes") }
                maxSize = v
            }
            let files = Int(query["maxfiles"] ?? "1") ?? 0
            if files < 1 { throw SkiffError.msg("log uri \(quote(s)): maxfiles must be at least 1") }
            return .file(path: path, maxSize: maxSize, maxFiles: files)
        case "binary":
            return .binary(path: path, args: query)
        case "fifo":
            return .fifo(path)
        default:
            throw SkiffError.msg("log uri \(quote(s)): unsupported scheme \(quote(scheme))", hint: "use file://, binary:// or a FIFO path")
        }
    }

    static func percentDecode(_ s: String) -> String { decodeEscapes(s, marker: UInt8(ascii: "%"), digits: 2, radix: 16) }
}

extension StringProtocol {
    func range(of needle: String) -> Range<Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}

/// An append-only log file that rotates by size: `path` → `path.1` → ... → `path.(maxFiles-1)`.
/// Every write lands whole in one file; nothing is dropped. A rotation that fails (no fd, no
/// inode, a directory in the way) fails before any file has moved, but for its last step (the
/// new file renamed into place), and the output goes on into the current one, past its size,
/// until the next try: once it has grown by another maxSize.
public final class RotatingLog {
    public let path: String
    let maxSize: Int?
    let maxFiles: Int
    var fd: Int32
    var size: Int
    /// After a failed rotation, the size at which to try again.
    var retryAt = 0
    /// Why the last rotation failed (also in the shim's log).
    public private(set) var rotationError: Error?

    public init(path: String, maxSize: Int?, maxFiles: Int) throws {
        self.path = path
        self.maxSize = maxSize
        self.maxFiles = maxFiles
        (fd, size) = try RotatingLog.open(path)
    }

    /// Opens the log for appending: a regular file, never through a symlink at its last
    /// component, and without waiting (the shim is one thread: a FIFO with no reader at the
    /// path would stop every container it serves).
    static func open(_ path: String, exclusive: Bool = false) throws -> (fd: Int32, size: Int) {
        let notRegular = SkiffError.msg("open log \(quote(path)): not a regular file", hint: "a file:// log URI names a file")
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | (exclusive ? O_EXCL : 0), 0o640)
        if fd < 0 {
            // ENXIO: a FIFO no one reads; ELOOP: a symlink.
            if errno == ENXIO || errno == ELOOP { throw notRegular }
            throw SkiffError.sys("open log", path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw notRegular
        }
        _ = skiff_fcntl_setfl(fd, skiff_fcntl_getfl(fd) & ~O_NONBLOCK)
        return (fd, Int(st.st_size))
    }

    deinit { close(fd) }

    public func write(_ bytes: [UInt8]) throws {
        if let maxSize, size > 0, size + bytes.count > maxSize, size >= retryAt {
            do {
                try rotate()
                rotationError = nil
                retryAt = 0
            } catch {
                if rotationError == nil { Logger.shared.error("\(error); the output goes on into \(quote(path)) past its size") }
                rotationError = error
                retryAt = size + maxSize
            }
        }
        do { try FS.writeAll(fd: fd, bytes) } catch var e as SkiffError { e.object = path; throw e }
        size += bytes.count
    }

    func rotate() throws {
        // One file: emptied through the fd we hold (a path could name another file by now).
        guard maxFiles > 1 else {
            if ftruncate(fd, 0) != 0 { throw SkiffError.sys("truncate log", path) }
            size = 0
            return
        }
        // The new file first, under a name of its own: what fails most (no fd left, no inode,
        // a quota) fails before any file has moved, and the fd we hold stays ours.
        let fresh = FS.dirname(path) + "/." + FS.basename(path) + ".rotating"
        unlink(fresh)
        let (next, _) = try RotatingLog.open(fresh, exclusive: true)
        func undo(_ e: SkiffError) -> SkiffError {
            close(next)
            unlink(fresh)
            return e
        }
        // The last place must be free before anything moves into it (a directory there is not).
        let last = "\(path).\(maxFiles - 1)"
        if unlink(last) != 0 && errno != ENOENT { throw undo(SkiffError.sys("rotate log", last)) }
        for n in stride(from: maxFiles - 2, through: 1, by: -1) { rename("\(path).\(n)", "\(path).\(n + 1)") }
        if Glibc.rename(path, "\(path).1") != 0 && errno != ENOENT { throw undo(SkiffError.sys("rotate log", path)) }
        if Glibc.rename(fresh, path) != 0 { throw undo(SkiffError.sys("rotate log", fresh)) }
        close(fd)
        (fd, size) = (next, 0)
    }
}

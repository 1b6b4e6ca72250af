import Foundation
import SkiffSys

/// One tar entry's header (ustar, with GNU long names and pax path/linkpath/size overrides).
public struct TarHeader {
    public enum Kind { case file, hardlink, symlink, char, block, directory, fifo, other(UInt8) }
    public var name: String
    public var kind: Kind
    public var mode: UInt32
    public var uid: Int
    public var gid: Int
    public var size: Int
    public var mtime: Int
    public var linkname: String
    public var devmajor: UInt32
    public var devminor: UInt32
    public var xattrs: [String: [UInt8]] = [:]
}

/// A streaming tar reader over any byte source (a file, a gunzip stream). Rejects malformed
/// headers with an error naming the entry instead of guessing.
public final class TarReader {
    let read: (Int) throws -> [UInt8]
    /// Data (with padding) of the current entry not read yet, and its real size.
    var remaining = 0
    var currentSize = 0

    /// `read(n)` returns up to n bytes; fewer only at the end of the stream.
    public init(read: @escaping (Int) throws -> [UInt8]) { self.read = read }

    func exactly(_ n: Int) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n)
        while out.count < n {
            let chunk = try read(n - out.count)
            if chunk.isEmpty { throw ManagerError("read tar", nil, "truncated archive") }
            out += chunk
        }
        return out
    }

    static func field(_ b: ArraySlice<UInt8>) -> String {
        String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A numeric field, octal or GNU base-256, within 0...`max`: a hostile layer's uid of 2^40
    /// or negative size is an error here, not a trap where the value meets a C type.
    static func octal(_ b: ArraySlice<UInt8>, _ what: String, max: Int = Int(UInt32.max)) throws -> Int {
        func outOfRange(_ shown: String) -> ManagerError {
            ManagerError("read tar", nil, "\(what) field \(shown) is out of range (0-\(max))")
        }
        if let first = b.first, first & 0x80 != 0 {
            // GNU base-256: 0x80 then a big-endian number; 0xff starts a negative one.
            if first == 0xff { throw outOfRange("(negative)") }
            var v = Int(first & 0x7f)
            for x in b.dropFirst() {
                guard v <= (Int.max >> 8) else { throw outOfRange("(base-256, over 63 bits)") }
                v = v << 8 | Int(x)
            }
            guard v <= max else { throw outOfRange("\(v)") }
            return v
        }
        let s = field(b).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        if s.isEmpty { return 0 }
        guard s.allSatisfy({ ("0"..."7").contains($0) }), let v = Int(s, radix: 8) else {
            throw ManagerError("read tar", nil, "bad \(what) field \"\(s)\"")
        }
        guard v <= max else { throw outOfRange("\(v)") }
        return v
    }

    /// Sizes: an entry's data never exceeds a petabyte (and `+ 511` can never overflow).
    static let maxSize = 1 << 50
    /// uid and gid: (uid_t)-1 means "leave unchanged" to chown, so the largest is one below.
    static let maxID = Int(UInt32.max) - 1

    /// The next entry (the unread data of the previous one is skipped).
    public func next() throws -> TarHeader? {
        while remaining > 0 { remaining -= try exactly(min(remaining, 1 << 20)).count }
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        var paxXattrs: [String: [UInt8]] = [:]
        while true {
            let block = try exactly(512)
            if block.allSatisfy({ $0 == 0 }) { return nil }
            let stored = try TarReader.octal(block[148..<156], "checksum")
            var sum = 0
            for (i, b) in block.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
            guard sum == stored else { throw ManagerError("read tar", TarReader.field(block[0..<100]), "header checksum mismatch") }
            let size = try TarReader.octal(block[124..<136], "size", max: TarReader.maxSize)
            let type = block[156]
            let padded = (size + 511) / 512 * 512
            if type == UInt8(ascii: "L") || type == UInt8(ascii: "K") || type == UInt8(ascii: "x") || type == UInt8(ascii: "g") {
                guard size < 16 << 20 else { throw ManagerError("read tar", nil, "metadata entry too large (\(size) bytes)") }
                let data = Array(try exactly(padded).prefix(size))
                switch type {
                case UInt8(ascii: "L"): longName = TarReader.field(data[...])
                case UInt8(ascii: "K"): longLink = TarReader.field(data[...])
                case UInt8(ascii: "x"): (pax, paxXattrs) = TarReader.parsePax(data)
                default: break  // global pax headers carry nothing we use
                }
                continue
            }
            var name = TarReader.field(block[0..<100])
            let prefix = TarReader.field(block[345..<500])
            if !prefix.isEmpty && block[257..<262].elementsEqual(Array("ustar".utf8)) { name = prefix + "/" + name }
            if let l = longName { name = l }
            if let p = pax["path"] { name = p }
            var link = TarReader.field(block[157..<257])
            if let l = longLink { link = l }
            if let p = pax["linkpath"] { link = p }
            // A NUL inside a name (GNU long names and pax records can carry one) would cut the
            // path where a C call reads it: "..\0" passes every check and is "..".
            for (what, value) in [("name", name), ("link target", link)] where value.utf8.contains(0) {
                throw ManagerError("read tar", name.replacingOccurrences(of: "\0", with: "\\0"), "the entry's \(what) holds a NUL byte; refused")
            }
            for key in paxXattrs.keys where key.utf8.contains(0) {
                throw ManagerError("read tar", name, "an xattr name holds a NUL byte; refused")
            }
            var realSize = size
            if let p = pax["size"] {
                guard let v = Int(p), v >= 0, v <= TarReader.maxSize else { throw ManagerError("read tar", name, "bad pax size \"\(p)\"") }
                realSize = v
            }
            let kind: TarHeader.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "1"): kind = .hardlink
            case UInt8(ascii: "2"): kind = .symlink
            case UInt8(ascii: "3"): kind = .char
            case UInt8(ascii: "4"): kind = .block
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "6"): kind = .fifo
            default: kind = .other(type)
            }
            var h = TarHeader(
                name: name, kind: kind, mode: UInt32(try TarReader.octal(block[100..<108], "mode")),
                uid: try TarReader.octal(block[108..<116], "uid", max: TarReader.maxID),
                gid: try TarReader.octal(block[116..<124], "gid", max: TarReader.maxID),
                size: realSize, mtime: try TarReader.octal(block[136..<148], "mtime", max: Int(Int64.max)), linkname: link,
                devmajor: UInt32(try TarReader.octal(block[329..<337], "devmajor")),
                devminor: UInt32(try TarReader.octal(block[337..<345], "devminor")))
            h.xattrs = paxXattrs
            remaining = (realSize + 511) / 512 * 512
            currentSize = realSize
            return h
        }
    }

    /// The current entry's data, in chunks of up to 1 MiB (padding dropped).
    public func body(_ chunk: ([UInt8]) throws -> Void) throws {
        var left = currentSize
        while left > 0 {
            let d = try exactly(min(left, 1 << 20))
            remaining -= d.count
            left -= d.count
            try chunk(d)
        }
        currentSize = 0
    }

    public func body() throws -> [UInt8] {
        var out: [UInt8] = []
        try body { out += $0 }
        return out
    }

    static func parsePax(_ data: [UInt8]) -> ([String: String], [String: [UInt8]]) {
        var out: [String: String] = [:]
        var xattrs: [String: [UInt8]] = [:]
        var i = 0
        while i < data.count {
            // "LEN key=value\n": LEN covers the whole record, so it must reach past the space
            // (a shorter one made an inverted range: found by fuzzing).
            guard let sp = data[i...].firstIndex(of: UInt8(ascii: " ")), let len = Int(String(decoding: data[i..<sp], as: UTF8.self)),
                len > sp - i + 1, len <= data.count - i
            else { break }
            let record = data[(sp + 1)..<(i + len - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
                let value = Array(record[(eq + 1)...])
                if key.hasPrefix("SCHILY.xattr.") { xattrs[String(key.dropFirst(13))] = value } else { out[key] = String(decoding: value, as: UTF8.self) }
            }
            i += len
        }
        return (out, xattrs)
    }
}

/// Writes an archive (`images export`) entry by entry: a blob is copied from its file and a
/// stream is written as it is made, so no entry is ever held in memory whole.
///
/// Where it goes, decided on what the path is (lstat), never re-resolved by name:
/// - nothing, or a regular file with one link: a new file in the same directory (an unnamed
///   O_TMPFILE where the filesystem has them, so a killed export leaves nothing), flushed, given
///   the old file's owner and mode, and renamed over the path once whole: a failure leaves the
///   old file as it was;
/// - `-`: standard output;
/// - anything else (a symlink, a file with other links, a device, a FIFO): opened as a shell's
///   `>` opens it (the kernel follows a symlink, with fs.protected_symlinks), a regular file
///   then emptied and written in place, anything else written as it comes; never removed.
final class TarWriter {
    let path: String
    let fd: Int32
    /// The new file's directory and name, renamed to `path` by finish; nil when writing in place.
    let replacement: (dir: String, base: String, owner: (uid_t, gid_t, mode_t)?, named: String?)?
    /// Bytes written so far: where the next header goes.
    var offset = 0
    /// A file we write from its start, whose headers can be written again once a size is known.
    let seekable: Bool
    var done = false

    init(path: String) throws {
        self.path = path == "-" ? "standard output" : path
        var st = stat()
        if path == "-" {
            fd = 1
            replacement = nil
            seekable = false
            return
        }
        let exists = lstat(path, &st) == 0
        if !exists && errno != ENOENT { throw ManagerError("export", path, String(cString: strerror(errno))) }
        if !exists || ((st.st_mode & S_IFMT) == S_IFREG && st.st_nlink == 1) {
            let dir = FS.dirname(path), base = FS.basename(path)
            let owner = exists ? (st.st_uid, st.st_gid, st.st_mode & 0o7777) : nil
            // Unnamed until it is whole (O_TMPFILE); a named temporary where the filesystem has none.
            var named: String?
            var f = open(dir, TarWriter.oTmpfile | O_WRONLY | O_CLOEXEC, 0o644)
            if f < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
                let tmp = TarWriter.temporaryName(dir, base)
                f = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
                named = tmp
            }
            if f < 0 { throw ManagerError("export", path, String(cString: strerror(errno))) }
            fd = f
            replacement = (dir, base, owner, named)
            seekable = true
            return
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw ManagerError("export", path, "is a directory") }
        let f = open(path, O_WRONLY | O_CREAT | O_NOCTTY | O_CLOEXEC, 0o644)
        if f < 0 { throw ManagerError("export", path, String(cString: strerror(errno))) }
        // What the fd is, not what the path was a moment ago.
        guard fstat(f, &st) == 0 else { let e = errno; close(f); throw ManagerError("export", path, String(cString: strerror(e))) }
        if (st.st_mode & S_IFMT) == S_IFREG {
            if ftruncate(f, 0) != 0 { let e = errno; close(f); throw ManagerError("export", path, String(cString: strerror(e))) }
            seekable = true
        } else {
            seekable = false
        }
        fd = f
        replacement = nil
    }

    deinit { if fd != 1 { close(fd) } }

    /// A name of our own beside the archive, hidden, for the file until it is renamed over it.
    static func temporaryName(_ dir: String, _ base: String) -> String {
        "\(dir)/.\(base).export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// O_TMPFILE (__O_TMPFILE | O_DIRECTORY), which Swift's Glibc does not import.
    static let oTmpfile: Int32 = 0o20_000_000 | O_DIRECTORY

    /// A ustar header for a regular file; a size past ustar's 11 octal digits (8 GiB) in GNU
    /// base-256, as Go's archive/tar and GNU tar read it.
    static func header(_ name: String, size: Int) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) { for (i, b) in s.utf8.prefix(len).enumerated() { h[at + i] = b } }
        put(name, 0, 100)
        put("0000644\0", 100, 8); put("0000000\0", 108, 8); put("0000000\0", 116, 8)
        if size < 1 << 33 {
            put(String(format: "%011o\0", size), 124, 12)
        } else {
            h[124] = 0x80
            for i in 0..<8 { h[135 - i] = UInt8(truncatingIfNeeded: size >> (8 * i)) }
        }
        put("00000000000\0", 136, 12)
        put("        ", 148, 8)
        h[156] = UInt8(ascii: "0")
        put("ustar\0", 257, 6); put("00", 263, 2)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o\0 ", sum), 148, 8)
        return h
    }

    static func checkName<S: StringProtocol>(_ name: S) throws {
        guard name.utf8.count <= 100 else { throw ManagerError("export", String(name), "name too long for ustar") }
    }

    func failed(_ e: Int32) -> ManagerError {
        if e == EINTR, Interrupts.signal != 0 {
            return ManagerError("export", path, "interrupted by signal \(Interrupts.signal)", hint: "nothing was written over what was there")
        }
        return ManagerError("export", path, String(cString: strerror(e)))
    }

    func write(_ p: UnsafeRawBufferPointer) throws {
        if Interrupts.signal != 0 { throw failed(EINTR) }
        var off = 0
        while off < p.count {
            let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR && Interrupts.signal == 0 { continue }
                throw failed(errno)
            }
            off += n
        }
        offset += p.count
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func pad(_ size: Int) throws {
        let n = (512 - size % 512) % 512
        if n > 0 { try write([UInt8](repeating: 0, count: n)) }
    }

    func add<S: StringProtocol>(_ name: S, _ data: [UInt8]) throws {
        try TarWriter.checkName(name)
        try write(TarWriter.header(String(name), size: data.count))
        try write(data)
        try pad(data.count)
    }

    /// An entry copied from an open file: exactly `size` bytes of it (the kernel copies them).
    func add<S: StringProtocol>(_ name: S, file: Int32, size: Int, source: String) throws {
        try TarWriter.checkName(name)
        try write(TarWriter.header(String(name), size: size))
        let r = copyBytes(from: file, to: fd, count: size)
        offset += r.copied
        if let e = r.readError { throw ManagerError("export: read", source, String(cString: strerror(e))) }
        if let e = r.writeError { throw failed(e) }
        if r.copied < size { throw ManagerError("export", source, "ended after \(r.copied) of its \(size) bytes") }
        try pad(size)
    }

    /// An entry copied from a blob of the store.
    func add<S: StringProtocol>(_ name: S, blob digest: String, from content: ContentStore) throws {
        let blob = try content.openBlob(digest)
        defer { close(blob.fd) }
        try add(name, file: blob.fd, size: blob.size, source: digest)
    }

    /// An entry whose size is known only once it is written (an uncompressed layer): `produce`
    /// writes the data through the function it is given. To a file, the header is written again
    /// after; elsewhere `size` must say it (the caller counted it in a first pass) and `produce`
    /// must write exactly that much.
    func add<S: StringProtocol>(
        _ name: S, size known: Int? = nil, produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        try TarWriter.checkName(name)
        precondition(seekable || known != nil)
        let start = offset
        try write(TarWriter.header(String(name), size: known ?? 0))
        try produce { try write($0) }
        let size = offset - start - 512
        if let known, known != size {
            throw ManagerError("export", String(name), "\(size) bytes written where the header says \(known)", hint: "did the blob change during the export?")
        }
        if known == nil {
            let h = TarWriter.header(String(name), size: size)
            let n = h.withUnsafeBytes { pwrite(fd, $0.baseAddress, 512, off_t(start)) }
            if n != 512 { throw n < 0 ? failed(errno) : ManagerError("export", path, "short write") }
        }
        try pad(size)
    }

    /// The end blocks; a new file is flushed, given the old one's owner and mode, and named.
    func finish() throws {
        try write([UInt8](repeating: 0, count: 1024))
        guard let r = replacement else { done = true; return }
        defer { done = true }
        do {
            if fsync(fd) != 0 { throw failed(errno) }
            if Interrupts.signal != 0 { throw failed(EINTR) }  // stopped while it flushed
            if let (uid, gid, mode) = r.owner {
                if (uid != geteuid() || gid != getegid()) && fchown(fd, uid, gid) != 0 { throw failed(errno) }
                if fchmod(fd, mode) != 0 { throw failed(errno) }
            }
            var named = r.named
            if named == nil {
                // An O_TMPFILE gets a name of its own first (linkat cannot replace), then the path's.
                let tmp = TarWriter.temporaryName(r.dir, r.base)
                if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0 { throw failed(errno) }
                named = tmp
            }
            if rename(named!, path) != 0 {
                let e = errno
                unlink(named!)
                throw failed(e)
            }
        } catch {
            if let n = r.named { unlink(n) }
            throw error
        }
    }

    /// After a failure: a new file goes (an O_TMPFILE goes by itself); what was at the path is as
    /// it was, unless it was written in place.
    func abandon() {
        guard !done, let r = replacement else { return }
        done = true
        if let n = r.named { unlink(n) }
    }
}

/// Copies up to `count` bytes from `input`'s offset to `output`: sendfile (the kernel moves
/// them), else read and write (as to an O_APPEND stdout, or to find which side failed). Returns
/// how many were copied (fewer at the end of `input`) and the errno of the side that failed.
/// Stops with EINTR as a write error once SIGINT or SIGTERM has arrived (Interrupts).
public func copyBytes(from input: Int32, to output: Int32, count: Int) -> (copied: Int, readError: Int32?, writeError: Int32?) {
    var copied = 0
    var kernel = true
    var buffer: UnsafeMutableRawPointer?
    defer { free(buffer) }
    while copied < count {
        if Interrupts.signal != 0 { return (copied, nil, EINTR) }
        if kernel {
            let n = sendfile(output, input, nil, min(count - copied, 8 << 20))
            if n > 0 { copied += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            kernel = false  // which side failed, and why, is for read and write to say
            continue
        }
        if buffer == nil { buffer = malloc(1 << 20) }
        let n = read(input, buffer, min(count - copied, 1 << 20))
        if n < 0 {
            if errno == EINTR { continue }
            return (copied, errno, nil)
        }
        if n == 0 { break }
        var off = 0
        while off < n {
            let w = write(output, buffer! + off, n - off)
            if w < 0 {
                if errno == EINTR && Interrupts.signal == 0 { continue }
                return (copied + off, nil, errno)
            }
            off += w
        }
        copied += n
    }
    return (copied, nil, nil)
}

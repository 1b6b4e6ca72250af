import Foundation

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

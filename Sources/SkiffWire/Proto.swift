/// A small protobuf (proto3 binary) codec for the shim and ttrpc. swift-protobuf would bring
/// FoundationEssentials, libdispatch and ICU data (~70 MB of static binary, ~9 MB resident) into
/// a process that must stay tiny; the messages the shim speaks are few and flat, so they are
/// written by hand against the documented field numbers (and cross-checked in the tests against
/// swift-protobuf's generated code).
public enum ProtoError: Error, Equatable, CustomStringConvertible {
    case truncated
    case badWireType(field: Int, wire: Int)
    case badVarint
    case badUTF8(field: Int)
    case nulInString(field: Int)

    public var description: String {
        switch self {
        case .truncated: return "protobuf: truncated message"
        case .badWireType(let f, let w): return "protobuf: field \(f) has unexpected wire type \(w)"
        case .badVarint: return "protobuf: malformed varint"
        case .badUTF8(let f): return "protobuf: field \(f) is not valid UTF-8"
        case .nulInString(let f): return "protobuf: field \(f) contains a NUL byte, which no system call can take"
        }
    }
}

public protocol ProtoMessage {
    init()
    func encode(to w: inout ProtoWriter)
    /// Takes one field; unknown fields are ignored, as proto3 requires.
    mutating func decode(field: Int, _ v: ProtoValue) throws
}

extension ProtoMessage {
    public init(protoBytes: [UInt8]) throws {
        try self.init(protoSlice: protoBytes[...])
    }

    public init(protoSlice: ArraySlice<UInt8>) throws {
        self.init()
        var r = ProtoReader(protoSlice)
        while let (field, value) = try r.next() { try decode(field: field, value) }
    }

    /// A message built in one expression (swift-protobuf's spelling): `TaskPaused.with { $0.containerID = id }`.
    public static func with(_ build: (inout Self) -> Void) -> Self {
        var m = Self()
        build(&m)
        return m
    }

    public func protoBytes() -> [UInt8] {
        var w = ProtoWriter()
        encode(to: &w)
        return w.bytes
    }
}

/// One decoded field value.
public enum ProtoValue {
    case varint(UInt64)
    case fixed64(UInt64)
    case bytes(ArraySlice<UInt8>, field: Int)
    case fixed32(UInt32)

    func wrong(_ field: Int) -> ProtoError {
        switch self {
        case .varint: return .badWireType(field: field, wire: 0)
        case .fixed64: return .badWireType(field: field, wire: 1)
        case .bytes: return .badWireType(field: field, wire: 2)
        case .fixed32: return .badWireType(field: field, wire: 5)
        }
    }

    public func uint64(_ f: Int) throws -> UInt64 {
        if case .varint(let v) = self { return v }
        throw wrong(f)
    }
    public func uint32(_ f: Int) throws -> UInt32 { UInt32(truncatingIfNeeded: try uint64(f)) }
    public func int64(_ f: Int) throws -> Int64 { Int64(bitPattern: try uint64(f)) }
    public func int32(_ f: Int) throws -> Int32 { Int32(truncatingIfNeeded: try uint64(f)) }
    public func bool(_ f: Int) throws -> Bool { try uint64(f) != 0 }

    public func bytes(_ f: Int) throws -> [UInt8] {
        if case .bytes(let b, _) = self { return Array(b) }
        throw wrong(f)
    }

    public func string(_ f: Int) throws -> String {
        guard case .bytes(let b, _) = self else { throw wrong(f) }
        guard let s = String(validating: b, as: UTF8.self) else { throw ProtoError.badUTF8(field: f) }
        // Strings from containerd become paths, mount options and ids: a NUL would cut them
        // short at the system call (as Go's syscall layer refuses them, so does this).
        if b.contains(0) { throw ProtoError.nulInString(field: f) }
        return s
    }

    public func message<M: ProtoMessage>(_ f: Int, _: M.Type = M.self) throws -> M {
        guard case .bytes(let b, _) = self else { throw wrong(f) }
        return try M(protoSlice: b)
    }
}

public struct ProtoReader {
    let data: ArraySlice<UInt8>
    var i: Int

    public init(_ data: ArraySlice<UInt8>) {
        self.data = data
        i = data.startIndex
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < data.endIndex else { throw ProtoError.truncated }
            let b = data[i]
            i += 1
            if shift == 63 && b > 1 { throw ProtoError.badVarint }
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw ProtoError.badVarint }
        }
    }

    /// A fixed32/fixed64 field's value (little-endian on the wire).
    mutating func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws -> T {
        let n = T.bitWidth / 8
        guard data.endIndex - i >= n else { throw ProtoError.truncated }
        var v: T = 0
        for k in 0..<n { v |= T(data[i + k]) << (8 * k) }
        i += n
        return v
    }

    public mutating func next() throws -> (Int, ProtoValue)? {
        guard i < data.endIndex else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0 else { throw ProtoError.badWireType(field: field, wire: Int(key & 7)) }
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try littleEndian(UInt64.self)))
        case 2:
            let n = try varint()
            guard n <= UInt64(data.endIndex - i) else { throw ProtoError.truncated }
            let s = data[i..<(i + Int(n))]
            i += Int(n)
            return (field, .bytes(s, field: field))
        case 5: return (field, .fixed32(try littleEndian(UInt32.self)))
        default:
            throw ProtoError.badWireType(field: field, wire: Int(key & 7))
        }
    }
}

/// proto3 writer: scalar fields equal to their default are left out.
public struct ProtoWriter {
    public var bytes: [UInt8] = []
    public init() {}

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }

    public mutating func uint(_ field: Int, _ v: UInt64) {
        guard v != 0 else { return }
        key(field, 0); varint(v)
    }
    public mutating func uint(_ field: Int, _ v: UInt32) { uint(field, UInt64(v)) }
    public mutating func int(_ field: Int, _ v: Int64) { uint(field, UInt64(bitPattern: v)) }
    /// int32 negatives are sign-extended to 64 bits on the wire.
    public mutating func int(_ field: Int, _ v: Int32) { uint(field, UInt64(bitPattern: Int64(v))) }
    public mutating func bool(_ field: Int, _ v: Bool) { if v { key(field, 0); varint(1) } }

    public mutating func bytes(_ field: Int, _ v: [UInt8]) {
        guard !v.isEmpty else { return }
        key(field, 2); varint(UInt64(v.count)); bytes += v
    }
    public mutating func string(_ field: Int, _ v: String) { bytes(field, Array(v.utf8)) }
    public mutating func strings(_ field: Int, _ vs: [String]) {
        for v in vs { key(field, 2); let u = Array(v.utf8); varint(UInt64(u.count)); bytes += u }
    }

    /// A sub-message; nil (unset) is left out, an empty set message is written.
    public mutating func message<M: ProtoMessage>(_ field: Int, _ m: M?) {
        guard let m else { return }
        let b = m.protoBytes()
        key(field, 2); varint(UInt64(b.count)); bytes += b
    }
    public mutating func messages<M: ProtoMessage>(_ field: Int, _ ms: [M]) {
        for m in ms { message(field, m) }
    }
}

// MARK: well-known types

public struct ProtoAny: ProtoMessage, Equatable, Sendable {
    public var typeURL = ""
    public var value: [UInt8] = []
    public init() {}
    public init(typeURL: String, value: [UInt8]) { self.typeURL = typeURL; self.value = value }
    public func encode(to w: inout ProtoWriter) { w.string(1, typeURL); w.bytes(2, value) }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: typeURL = try v.string(field)
        case 2: value = try v.bytes(field)
        default: break
        }
    }
}

public struct ProtoTimestamp: ProtoMessage, Equatable, Sendable {
    public var seconds: Int64 = 0
    public var nanos: Int32 = 0
    public init() {}
    public init(seconds: Int64, nanos: Int32) { self.seconds = seconds; self.nanos = nanos }
    public func encode(to w: inout ProtoWriter) { w.int(1, seconds); w.int(2, nanos) }
    public mutating func decode(field: Int, _ v: ProtoValue) throws {
        switch field {
        case 1: seconds = try v.int64(field)
        case 2: nanos = try v.int32(field)
        default: break
        }
    }
}

public struct ProtoEmpty: ProtoMessage, Equatable, Sendable {
    public init() {}
    public func encode(to w: inout ProtoWriter) {}
    public mutating func decode(field: Int, _ v: ProtoValue) throws {}
}

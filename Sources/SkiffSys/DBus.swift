import Glibc

/// A D-Bus value, enough for systemd's Manager API: the basic types it takes and answers with,
/// arrays, structs and variants. Little-endian only (what systemd writes on the machines we run).
public indirect enum DBusValue {
    case byte(UInt8)
    case bool(Bool)
    case uint32(UInt32)
    case uint64(UInt64)
    case string(String)
    case objectPath(String)
    case signature(String)
    /// Elements of one type; `element` is their signature (an empty array still needs it).
    case array(element: String, [DBusValue])
    case structure([DBusValue])
    case variant(DBusValue)

    public var signature: String {
        switch self {
        case .byte: return "y"
        case .bool: return "b"
        case .uint32: return "u"
        case .uint64: return "t"
        case .string: return "s"
        case .objectPath: return "o"
        case .signature: return "g"
        case .array(let element, _): return "a" + element
        case .structure(let fields): return "(" + fields.map(\.signature).joined() + ")"
        case .variant: return "v"
        }
    }

    /// Alignment of the type's start in the wire format.
    var alignment: Int { DBusValue.alignment(ofSignature: signature) }

    public var text: String? {
        switch self {
        case .string(let s), .objectPath(let s), .signature(let s): return s
        default: return nil
        }
    }

    public var number: UInt64? {
        switch self {
        case .uint32(let v): return UInt64(v)
        case .uint64(let v): return v
        case .byte(let v): return UInt64(v)
        default: return nil
        }
    }
}

/// The D-Bus wire format: values aligned to their size from the start of the message.
struct DBusWriter {
    var bytes: [UInt8] = []

    mutating func pad(_ n: Int) { while bytes.count % n != 0 { bytes.append(0) } }
    mutating func u32(_ v: UInt32) {
        pad(4)
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    mutating func write(_ v: DBusValue) {
        pad(v.alignment)
        switch v {
        case .byte(let b): bytes.append(b)
        case .bool(let b): u32(b ? 1 : 0)
        case .uint32(let n): u32(n)
        case .uint64(let n): withUnsafeBytes(of: n.littleEndian) { bytes += $0 }
        case .string(let s), .objectPath(let s):
            u32(UInt32(s.utf8.count))
            bytes += s.utf8
            bytes.append(0)
        case .signature(let s):
            bytes.append(UInt8(s.utf8.count))
            bytes += s.utf8
            bytes.append(0)
        case .array(let element, let items):
            u32(0)
            let lengthAt = bytes.count - 4
            // The length counts the elements, not the padding before the first one.
            pad(DBusValue.alignment(ofSignature: element))
            let start = bytes.count
            for item in items { write(item) }
            let n = UInt32(bytes.count - start).littleEndian
            withUnsafeBytes(of: n) { for (k, b) in $0.enumerated() { bytes[lengthAt + k] = b } }
        case .structure(let fields): for f in fields { write(f) }
        case .variant(let inner):
            write(.signature(inner.signature))
            write(inner)
        }
    }
}

extension DBusValue {
    static func alignment(ofSignature s: String) -> Int {
        switch s.first {
        case "y", "g", "v": return 1
        case "t", "x", "d", "(", "{": return 8
        default: return 4
        }
    }
}

/// Reads values of the basic types (and skips what it does not need) from a received message.
struct DBusReader {
    let bytes: [UInt8]
    var i: Int

    mutating func align(_ n: Int) throws {
        i = (i + n - 1) / n * n
        if i > bytes.count { throw DBusError.malformed }
    }

    /// A little-endian integer at its natural alignment.
    mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws -> T {
        let n = T.bitWidth / 8
        try align(n)
        guard i + n <= bytes.count else { throw DBusError.malformed }
        var v: T = 0
        for k in 0..<n { v |= T(bytes[i + k]) << (8 * k) }
        i += n
        return v
    }

    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }

    mutating func string(lengthBytes: Int) throws -> String {
        let n: Int
        if lengthBytes == 1 {
            guard i < bytes.count else { throw DBusError.malformed }
            n = Int(bytes[i])
            i += 1
        } else {
            n = Int(try u32())
        }
        guard i + n + 1 <= bytes.count else { throw DBusError.malformed }
        let s = String(decoding: bytes[i..<(i + n)], as: UTF8.self)
        i += n + 1
        return s
    }

    /// One value of a single complete basic type.
    mutating func value(_ type: Character) throws -> DBusValue {
        switch type {
        case "y":
            guard i < bytes.count else { throw DBusError.malformed }
            i += 1
            return .byte(bytes[i - 1])
        case "b": return .bool(try u32() != 0)
        case "u": return .uint32(try u32())
        case "t": return .uint64(try integer(UInt64.self))
        case "s": return .string(try string(lengthBytes: 4))
        case "o": return .objectPath(try string(lengthBytes: 4))
        case "g": return .signature(try string(lengthBytes: 1))
        default: throw DBusError.unsupported(String(type))
        }
    }
}

public enum DBusError: Error {
    case malformed
    case unsupported(String)
}

/// A received message: its type, the header fields we use, and its body's leading basic values.
public struct DBusMessage {
    public enum Kind: UInt8 { case methodCall = 1, methodReturn, error, signal }
    public var kind: Kind
    public var serial: UInt32
    public var replySerial: UInt32?
    public var member: String?
    public var errorName: String?
    public var signature: String
    /// The body's values, for bodies made of basic types only (others are left empty).
    public var body: [DBusValue]
}

/// A synchronous D-Bus connection over a unix socket: EXTERNAL authentication, method calls, and
/// the signals that arrive while waiting. No threads, no bus library: the runtime path stays
/// single-threaded (../shared/notes/swift-facts.md).
public final class DBusConnection {
    let fd: Int32
    var serial: UInt32 = 0
    var input: [UInt8] = []
    /// Signals read while waiting for a reply, handed to `waitSignal` later.
    var pendingSignals: [DBusMessage] = []
    /// Whether a message bus sits between us and the peer (then `Hello` was sent and calls carry a destination).
    public let viaBus: Bool

    /// Connects and authenticates as our uid. `bus`: the peer is a message bus (send Hello).
    public init(path: String, bus: Bool, timeoutMs: Int = 30_000) throws {
        fd = try Sys.connectUnix(path)
        viaBus = bus
        do {
            // The authentication lines are read blocking: bounded, so a peer that accepts and
            // never answers cannot hold a create (and its container's lock) forever.
            var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let uid = String(getuid())
            let hex = uid.utf8.map { String($0, radix: 16) }.joined()
            try send([0] + Array("AUTH EXTERNAL \(hex)\r\n".utf8))
            let answer = try readLine()
            guard answer.hasPrefix("OK ") else { throw SkiffError("D-Bus authentication", path, detail: "the peer said \(quote(answer))") }
            try send(Array("BEGIN\r\n".utf8))
            if bus { _ = try call(path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "Hello", destination: "org.freedesktop.DBus") }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// MSG_NOSIGNAL: a peer that hangs up is an error to report, not a SIGPIPE that kills the runtime.
    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { buf in retryEINTR { Glibc.send(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL)) } }
            if n < 0 { throw SkiffError.sys("write", "D-Bus socket") }
            off += n
        }
    }

    func readLine() throws -> String {
        var line: [UInt8] = []
        var b: UInt8 = 0
        while line.count < 4096 {
            let n = retryEINTR { Glibc.read(fd, &b, 1) }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw SkiffError("D-Bus authentication", "socket", errno: ETIMEDOUT, hint: "the peer did not answer in time")
            }
            if n <= 0 { throw n == 0 ? SkiffError("D-Bus", "socket", detail: "the peer closed the connection") : SkiffError.sys("read", "D-Bus socket") }
            if b == UInt8(ascii: "\n") { break }
            if b != UInt8(ascii: "\r") { line.append(b) }
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Sends a method call and returns its reply's body; a D-Bus error becomes a SkiffError that
    /// names the method and carries the error's name and text.
    @discardableResult
    public func call(
        path: String, interface: String, member: String, destination: String = "org.freedesktop.systemd1", _ args: [DBusValue] = [],
        timeoutMs: Int = 30_000
    ) throws -> [DBusValue] {
        serial &+= 1
        let mySerial = serial
        var fields: [DBusValue] = [
            .structure([.byte(1), .variant(.objectPath(path))]), .structure([.byte(2), .variant(.string(interface))]),
            .structure([.byte(3), .variant(.string(member))])
        ]
        if viaBus || destination == "org.freedesktop.DBus" { fields.append(.structure([.byte(6), .variant(.string(destination))])) }
        var body = DBusWriter()
        for a in args { body.write(a) }
        let signature = args.map(\.signature).joined()
        if !signature.isEmpty { fields.append(.structure([.byte(8), .variant(.signature(signature))])) }
        var w = DBusWriter()
        w.bytes = [UInt8(ascii: "l"), 1, 0, 1]
        w.u32(UInt32(body.bytes.count))
        w.u32(mySerial)
        w.write(.array(element: "(yv)", fields))
        w.pad(8)
        try send(w.bytes + body.bytes)
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while true {
            let m = try receive(deadline: deadline, what: member)
            if m.kind == .signal {
                // Kept for waitSignal, within reason: a peer that floods signals is not our memory's master.
                if pendingSignals.count < 1024 { pendingSignals.append(m) }
                continue
            }
            guard m.replySerial == mySerial else { continue }
            if m.kind == .error {
                let text = m.body.first?.text ?? ""
                throw SkiffError("D-Bus \(member)", m.errorName ?? "error", detail: text)
            }
            return m.body
        }
    }

    /// The next signal named `member` that `matches`, from those already read or still to come.
    public func waitSignal(member: String, timeoutMs: Int, _ matches: (DBusMessage) -> Bool) throws -> DBusMessage {
        if let k = pendingSignals.firstIndex(where: { $0.member == member && matches($0) }) { return pendingSignals.remove(at: k) }
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while true {
            let m = try receive(deadline: deadline, what: member)
            if m.kind == .signal && m.member == member && matches(m) { return m }
        }
    }

    func receive(deadline: UInt64, what: String) throws -> DBusMessage {
        while true {
            if let m = try parseOne() { return m }
            let now = monotonicNanos()
            if now >= deadline { throw SkiffError("D-Bus", what, errno: ETIMEDOUT, hint: "systemd did not answer in time") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            let ready = retryEINTR { poll(&p, 1, ms) }
            if ready < 0 { throw SkiffError.sys("poll", "D-Bus socket") }
            if ready == 0 { continue }  // the deadline is checked above: nothing is read without data
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = retryEINTR { Glibc.read(fd, &chunk, chunk.count) }
            if n < 0 && errno != EAGAIN { throw SkiffError.sys("read", "D-Bus socket") }
            if n == 0 { throw SkiffError("D-Bus", what, detail: "the peer closed the connection") }
            if n > 0 { input += chunk[0..<n] }
        }
    }

    /// One whole message from the input buffer, or nil until more bytes come.
    func parseOne() throws -> DBusMessage? {
        guard input.count >= 16 else { return nil }
        guard input[0] == UInt8(ascii: "l") else { throw DBusError.unsupported("big-endian messages") }
        var r = DBusReader(bytes: input, i: 4)
        let bodyLength = Int(try r.u32())
        let serial = try r.u32()
        let fieldsLength = Int(try r.u32())
        let headerEnd = (16 + fieldsLength + 7) / 8 * 8
        guard bodyLength < 128 << 20, fieldsLength < 1 << 20 else { throw DBusError.malformed }
        guard input.count >= headerEnd + bodyLength else { return nil }
        let message = Array(input[0..<(headerEnd + bodyLength)])
        input.removeFirst(headerEnd + bodyLength)
        guard let kind = DBusMessage.Kind(rawValue: message[1]) else { throw DBusError.malformed }
        var m = DBusMessage(kind: kind, serial: serial, replySerial: nil, member: nil, errorName: nil, signature: "", body: [])
        r = DBusReader(bytes: message, i: 16)
        while r.i < 16 + fieldsLength {
            try r.align(8)
            guard case .byte(let code) = try r.value("y") else { throw DBusError.malformed }
            guard case .signature(let sig) = try r.value("g"), let t = sig.first, sig.count == 1 else { throw DBusError.malformed }
            let v = try r.value(t)
            switch code {
            case 3: m.member = v.text
            case 4: m.errorName = v.text
            case 5: m.replySerial = v.number.map { UInt32(truncatingIfNeeded: $0) }
            case 8: m.signature = v.text ?? ""
            default: break
            }
        }
        r = DBusReader(bytes: message, i: headerEnd)
        if m.signature.allSatisfy({ "ybutsog".contains($0) }) {
            for t in m.signature { m.body.append(try r.value(t)) }
        }
        return m
    }
}

/// Codable over JSONValue: enough for the OCI model (structs, optionals, arrays, string-keyed
/// dictionaries, integers of every width, Bool, String, floating point).
public enum JSONDecodeError: Error, CustomStringConvertible {
    case missing(path: [String])
    case wrongType(path: [String], expected: String, found: String)
    case syntax(JSONSyntaxError)
    case invalid(path: [String], message: String)

    /// What is wrong, naming the field by its path (`process.args[0]`); callers put the document's
    /// name in front.
    public var description: String {
        switch self {
        case .syntax(let s): return "malformed JSON: \(s)"
        case .missing(let p): return "missing field \(JSONDecodeError.field(p))"
        case .wrongType(let p, let expected, let found): return "field \(JSONDecodeError.field(p)) has the wrong type (expected \(expected), found \(found))"
        case .invalid(let p, let m): return "field \(JSONDecodeError.field(p)): \(m)"
        }
    }

    /// The same error one level down: `key` (a member name, or `[i]`) goes in front of its path.
    public func prefixed(_ key: String) -> JSONDecodeError {
        switch self {
        case .missing(let p): return .missing(path: [key] + p)
        case .wrongType(let p, let e, let f): return .wrongType(path: [key] + p, expected: e, found: f)
        case .invalid(let p, let m): return .invalid(path: [key] + p, message: m)
        case .syntax: return self
        }
    }

    static func field(_ p: [String]) -> String {
        var s = ""
        for c in p { s += (c.hasPrefix("[") || s.isEmpty) ? c : "." + c }
        var out = ""
        JSONValue.escape(s, into: &out)
        return out
    }
}

struct PathKey: CodingKey {
    let name: String?
    let index: Int?
    /// An array index reads `[3]`; it is spelled out only when a path is printed.
    var stringValue: String { name ?? "[\(index ?? 0)]" }
    var intValue: Int? { index }
    init(stringValue: String) { name = stringValue; index = nil }
    init(intValue: Int) { name = nil; index = intValue }
}

/// Where a container sits in the document: a chain to the root, turned into a coding path only
/// when one is asked for (errors). Building `codingPath + [key]` for every field allocated one
/// array per value decoded; a node is made once per object or array.
final class PathNode {
    let parent: PathNode?
    let key: PathKey
    init(_ parent: PathNode?, _ key: PathKey) { self.parent = parent; self.key = key }

    static func keys(_ parent: PathNode?, _ last: PathKey? = nil) -> [any CodingKey] {
        var out: [any CodingKey] = last.map { [$0] } ?? []
        var n = parent
        while let c = n { out.append(c.key); n = c.parent }
        return out.reversed()
    }
}

func pathStrings(_ p: [any CodingKey]) -> [String] { p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue } }

public enum JSONCoder {
    /// The document's value; malformed JSON is a JSONDecodeError like any other decode error.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        do { return try JSONParser.parse(bytes) } catch let e as JSONSyntaxError { throw JSONDecodeError.syntax(e) }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, value: try parse(bytes))
    }

    /// A value already parsed (a member of a document read by hand), through Codable.
    public static func decode<T: Decodable>(_ type: T.Type, value: JSONValue) throws -> T {
        try T(from: ValueDecoder(value: value, parent: nil, key: nil))
    }

    public static func encodeValue<T: Encodable>(_ v: T) throws -> JSONValue {
        let box = ValueEncoder.Box()
        try v.encode(to: ValueEncoder(box: box, parent: nil, key: nil))
        return box.resolve()
    }

    public static func encode<T: Encodable>(_ v: T, indent: Int? = nil) throws -> String {
        try encodeValue(v).serialized(indent: indent)
    }
}

// MARK: decoding

struct ValueDecoder: Decoder {
    let value: JSONValue
    /// The container this value is in, and its key there (nil at the root).
    let parent: PathNode?
    let key: PathKey?
    var codingPath: [any CodingKey] { PathNode.keys(parent, key) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// This value's own node, for the containers it opens.
    var node: PathNode? { key.map { PathNode(parent, $0) } ?? parent }

    func mismatch(_ expected: String) -> JSONDecodeError {
        .wrongType(path: pathStrings(codingPath), expected: expected, found: value.kind)
    }

    func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
        guard case .object(let m) = value else { throw mismatch("an object") }
        return KeyedDecodingContainer(KeyedDec<K>(members: m, node: node))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let a) = value else { throw mismatch("an array") }
        return UnkeyedDec(items: a, node: node)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleDec(d: self) }

    func scalar<T: Decodable>(_ t: T.Type) throws -> T {
        switch value {
        case .string(let s) where T.self == String.self: return s as! T
        case .bool(let b) where T.self == Bool.self: return b as! T
        case .number(let n) where T.self != String.self && T.self != Bool.self:
            if let r = number(n, as: T.self) { return r }
            throw JSONDecodeError.invalid(path: pathStrings(codingPath), message: "number \(n) does not fit \(T.self)")
        default:
            throw mismatch(scalarKind(T.self) ?? "a number")
        }
    }

    func number<T>(_ n: String, as t: T.Type) -> T? {
        switch t {
        case is Int.Type: return Int(n) as? T
        case is Int8.Type: return Int8(n) as? T
        case is Int16.Type: return Int16(n) as? T
        case is Int32.Type: return Int32(n) as? T
        case is Int64.Type: return Int64(n) as? T
        case is UInt.Type: return UInt(n) as? T
        case is UInt8.Type: return UInt8(n) as? T
        case is UInt16.Type: return UInt16(n) as? T
        case is UInt32.Type: return UInt32(n) as? T
        case is UInt64.Type: return UInt64(n) as? T
        case is Double.Type: return Double(n) as? T
        case is Float.Type: return Float(n) as? T
        default: return nil
        }
    }

    func decode<T: Decodable>(_ t: T.Type) throws -> T {
        if scalarKind(t) != nil { return try scalar(t) }
        return try T(from: self)
    }
}

/// The JSON kind a scalar type is read from, as errors name it; nil for every other type.
func scalarKind<T>(_ t: T.Type) -> String? {
    if t == String.self { return "a string" }
    if t == Bool.self { return "a boolean" }
    if t == Int.self || t == Int64.self || t == UInt64.self || t == UInt32.self || t == Int32.self || t == UInt16.self || t == Int16.self
        || t == UInt8.self || t == Int8.self || t == UInt.self || t == Double.self || t == Float.self
    {
        return "a number"
    }
    return nil
}

/// What a value of `t` is called in errors: the JSON kind for scalars, the type's name otherwise.
func expectedName<T>(_ t: T.Type) -> String { scalarKind(t) ?? "\(T.self)" }

struct KeyedDec<K: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(String, JSONValue)]
    /// Objects with many members (annotations, sysctls) are looked up through an index; the
    /// small ones a config is made of are searched, which is cheaper than hashing each key.
    let index: [String: Int]?
    let node: PathNode?
    var codingPath: [any CodingKey] { PathNode.keys(node) }
    var allKeys: [K] { members.compactMap { K(stringValue: $0.0) } }

    init(members: [(String, JSONValue)], node: PathNode?) {
        self.members = members
        self.node = node
        if members.count > 16 {
            var ix: [String: Int] = [:]
            for (i, m) in members.enumerated() { ix[m.0] = i }
            index = ix
        } else {
            index = nil
        }
    }

    /// The member named `name`; the last one when a key repeats, as before (and as Go reads it).
    func find(_ name: String) -> JSONValue? {
        if let index { return index[name].map { members[$0].1 } }
        return JSONValue.member(name, in: members)
    }

    func contains(_ key: K) -> Bool { find(key.stringValue) != nil }

    func child(_ key: K) throws -> ValueDecoder {
        guard let v = find(key.stringValue) else {
            throw JSONDecodeError.missing(path: pathStrings(PathNode.keys(node, PathKey(stringValue: key.stringValue))))
        }
        return ValueDecoder(value: v, parent: node, key: PathKey(stringValue: key.stringValue))
    }

    /// The member unless it is absent or null: what every decodeIfPresent asks, in one lookup
    /// (the protocol's default asks contains, decodeNil and decode in turn).
    func present(_ key: K) -> ValueDecoder? {
        guard let v = find(key.stringValue), !v.isNull else { return nil }
        return ValueDecoder(value: v, parent: node, key: PathKey(stringValue: key.stringValue))
    }

    func decodeNil(forKey key: K) throws -> Bool {
        guard let v = find(key.stringValue) else { return true }
        return v.isNull
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T {
        let c = try child(key)
        if c.value.isNull { throw JSONDecodeError.wrongType(path: pathStrings(c.codingPath), expected: expectedName(T.self), found: "null") }
        return try c.decode(type)
    }
    func decode(_ type: Bool.Type, forKey key: K) throws -> Bool { try child(key).scalar(type) }
    func decode(_ type: String.Type, forKey key: K) throws -> String { try child(key).scalar(type) }
    func decode(_ type: Double.Type, forKey key: K) throws -> Double { try child(key).scalar(type) }
    func decode(_ type: Float.Type, forKey key: K) throws -> Float { try child(key).scalar(type) }
    func decode(_ type: Int.Type, forKey key: K) throws -> Int { try child(key).scalar(type) }
    func decode(_ type: Int8.Type, forKey key: K) throws -> Int8 { try child(key).scalar(type) }
    func decode(_ type: Int16.Type, forKey key: K) throws -> Int16 { try child(key).scalar(type) }
    func decode(_ type: Int32.Type, forKey key: K) throws -> Int32 { try child(key).scalar(type) }
    func decode(_ type: Int64.Type, forKey key: K) throws -> Int64 { try child(key).scalar(type) }
    func decode(_ type: UInt.Type, forKey key: K) throws -> UInt { try child(key).scalar(type) }
    func decode(_ type: UInt8.Type, forKey key: K) throws -> UInt8 { try child(key).scalar(type) }
    func decode(_ type: UInt16.Type, forKey key: K) throws -> UInt16 { try child(key).scalar(type) }
    func decode(_ type: UInt32.Type, forKey key: K) throws -> UInt32 { try child(key).scalar(type) }
    func decode(_ type: UInt64.Type, forKey key: K) throws -> UInt64 { try child(key).scalar(type) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T? { try present(key)?.decode(type) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: K) throws -> Bool? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: String.Type, forKey key: K) throws -> String? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Double.Type, forKey key: K) throws -> Double? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Float.Type, forKey key: K) throws -> Float? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Int.Type, forKey key: K) throws -> Int? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: K) throws -> Int8? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: K) throws -> Int16? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: K) throws -> Int32? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: K) throws -> Int64? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: K) throws -> UInt? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: K) throws -> UInt8? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: K) throws -> UInt16? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: K) throws -> UInt32? { try present(key)?.scalar(type) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: K) throws -> UInt64? { try present(key)?.scalar(type) }

    func nestedContainer<NK: CodingKey>(keyedBy type: NK.Type, forKey key: K) throws -> KeyedDecodingContainer<NK> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: K) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(members), parent: node, key: nil) }
    func superDecoder(forKey key: K) throws -> any Decoder { try child(key) }
}

struct UnkeyedDec: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let node: PathNode?
    var currentIndex = 0
    var codingPath: [any CodingKey] { PathNode.keys(node) }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [JSONValue], node: PathNode?) { self.items = items; self.node = node }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else { throw JSONDecodeError.invalid(path: pathStrings(codingPath), message: "array too short") }
        defer { currentIndex += 1 }
        return ValueDecoder(value: items[currentIndex], parent: node, key: PathKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, items[currentIndex].isNull { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().scalar(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next().scalar(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().scalar(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next().scalar(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().scalar(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().scalar(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().scalar(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().scalar(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().scalar(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().scalar(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().scalar(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().scalar(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().scalar(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().scalar(type) }
    mutating func nestedContainer<NK: CodingKey>(keyedBy type: NK.Type) throws -> KeyedDecodingContainer<NK> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

struct SingleDec: SingleValueDecodingContainer {
    let d: ValueDecoder
    var codingPath: [any CodingKey] { d.codingPath }
    func decodeNil() -> Bool { d.value.isNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try d.decode(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try d.scalar(type) }
    func decode(_ type: String.Type) throws -> String { try d.scalar(type) }
    func decode(_ type: Double.Type) throws -> Double { try d.scalar(type) }
    func decode(_ type: Float.Type) throws -> Float { try d.scalar(type) }
    func decode(_ type: Int.Type) throws -> Int { try d.scalar(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try d.scalar(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try d.scalar(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try d.scalar(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try d.scalar(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try d.scalar(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try d.scalar(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try d.scalar(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try d.scalar(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try d.scalar(type) }
}

// MARK: encoding

struct ValueEncoder: Encoder {
    /// Where a container writes its result; containers share boxes with their parents.
    final class Box {
        var value: JSONValue?
        var members: [(String, Box)] = []
        var items: [Box] = []
        var kind = 0  // 0 value, 1 object, 2 array
        var sortMembers = false

        func resolve() -> JSONValue {
            switch kind {
            case 1:
                let m = members.map { ($0.0, $0.1.resolve()) }
                return .object(sortMembers ? m.sorted { $0.0 < $1.0 } : m)
            case 2: return .array(items.map { $0.resolve() })
            default: return value ?? .null
            }
        }
    }

    let box: Box
    let parent: PathNode?
    let key: PathKey?
    var codingPath: [any CodingKey] { PathNode.keys(parent, key) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var node: PathNode? { key.map { PathNode(parent, $0) } ?? parent }

    func container<K: CodingKey>(keyedBy type: K.Type) -> KeyedEncodingContainer<K> {
        box.kind = 1
        // Dictionaries encode in hash order; sort them so output is stable. Structs keep
        // declaration order (runc-like field order). A dictionary's keys accept any Int
        // (`init(intValue:)`), a synthesized CodingKeys enum does not; asking that avoids printing
        // the type's name, which pulls the demangler into every command.
        if K(intValue: 0) != nil { box.sortMembers = true }
        return KeyedEncodingContainer(KeyedEnc<K>(box: box, node: node))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        box.kind = 2
        return UnkeyedEnc(box: box, node: node)
    }
    func singleValueContainer() -> any SingleValueEncodingContainer { SingleEnc(box: box, parent: parent, key: key) }
}

/// A scalar's JSON, told apart by type identity (a pointer compare) rather than by dynamic casts,
/// which ask the runtime for a conformance on every value encoded.
func encodeScalar<T: Encodable>(_ v: T, _ parent: PathNode?, _ key: PathKey?) throws -> JSONValue {
    let t = T.self
    if t == String.self { return .string(v as! String) }
    if t == Bool.self { return .bool(v as! Bool) }
    if t == Int.self { return .number(String(v as! Int)) }
    if t == UInt32.self { return .number(String(v as! UInt32)) }
    if t == Int64.self { return .number(String(v as! Int64)) }
    if t == UInt64.self { return .number(String(v as! UInt64)) }
    if t == Int32.self { return .number(String(v as! Int32)) }
    if t == UInt16.self { return .number(String(v as! UInt16)) }
    if t == Int16.self { return .number(String(v as! Int16)) }
    if t == UInt8.self { return .number(String(v as! UInt8)) }
    if t == Int8.self { return .number(String(v as! Int8)) }
    if t == UInt.self { return .number(String(v as! UInt)) }
    if t == Double.self {
        let d = v as! Double
        return .number(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)")
    }
    if t == Float.self { return .number("\(v as! Float)") }
    let inner = ValueEncoder.Box()
    try v.encode(to: ValueEncoder(box: inner, parent: parent, key: key))
    return inner.resolve()
}

struct KeyedEnc<K: CodingKey>: KeyedEncodingContainerProtocol {
    let box: ValueEncoder.Box
    let node: PathNode?
    var codingPath: [any CodingKey] { PathNode.keys(node) }

    func slot(_ key: K) -> ValueEncoder.Box {
        let b = ValueEncoder.Box()
        let name = key.stringValue
        if box.members.contains(where: { $0.0 == name }) { box.members.removeAll { $0.0 == name } }
        box.members.append((name, b))
        return b
    }
    mutating func encodeNil(forKey key: K) throws { slot(key).value = .null }
    mutating func encode<T: Encodable>(_ value: T, forKey key: K) throws {
        slot(key).value = try encodeScalar(value, node, PathKey(stringValue: key.stringValue))
    }
    mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type, forKey key: K) -> KeyedEncodingContainer<NK> {
        let b = slot(key); b.kind = 1
        return KeyedEncodingContainer(KeyedEnc<NK>(box: b, node: PathNode(node, PathKey(stringValue: key.stringValue))))
    }
    mutating func nestedUnkeyedContainer(forKey key: K) -> any UnkeyedEncodingContainer {
        let b = slot(key); b.kind = 2
        return UnkeyedEnc(box: b, node: PathNode(node, PathKey(stringValue: key.stringValue)))
    }
    mutating func superEncoder() -> any Encoder { ValueEncoder(box: box, parent: node, key: nil) }
    mutating func superEncoder(forKey key: K) -> any Encoder {
        ValueEncoder(box: slot(key), parent: node, key: PathKey(stringValue: key.stringValue))
    }
}

struct UnkeyedEnc: UnkeyedEncodingContainer {
    let box: ValueEncoder.Box
    let node: PathNode?
    var codingPath: [any CodingKey] { PathNode.keys(node) }
    var count: Int { box.items.count }

    func slot() -> ValueEncoder.Box { let b = ValueEncoder.Box(); box.items.append(b); return b }
    mutating func encodeNil() throws { slot().value = .null }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let i = count
        slot().value = try encodeScalar(value, node, PathKey(intValue: i))
    }
    mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type) -> KeyedEncodingContainer<NK> {
        let b = slot(); b.kind = 1
        return KeyedEncodingContainer(KeyedEnc<NK>(box: b, node: node))
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let b = slot(); b.kind = 2
        return UnkeyedEnc(box: b, node: node)
    }
    mutating func superEncoder() -> any Encoder { ValueEncoder(box: slot(), parent: node, key: nil) }
}

struct SingleEnc: SingleValueEncodingContainer {
    let box: ValueEncoder.Box
    let parent: PathNode?
    let key: PathKey?
    var codingPath: [any CodingKey] { PathNode.keys(parent, key) }
    mutating func encodeNil() throws { box.value = .null }
    mutating func encode<T: Encodable>(_ value: T) throws { box.value = try encodeScalar(value, parent, key) }
}

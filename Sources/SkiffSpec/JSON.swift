import SkiffSys
import SkiffJSON

/// JSON for the runtime path, without FoundationEssentials (see SkiffJSON).
public enum JSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONCoder.decode(type, from: bytes)
        } catch let e as JSONDecodeError {
            switch e {
            case .syntax(let s): throw SkiffError.msg("\(what): malformed JSON: \(s)")
            case .missing(let p): throw SkiffError.msg("\(what): missing field \(quote(field(p)))")
            case .wrongType(let p, let expected, let found):
                throw SkiffError.msg("\(what): field \(quote(field(p))) has the wrong type (expected \(expected), found \(found))")
            case .invalid(let p, let m): throw SkiffError.msg("\(what): field \(quote(field(p))): \(m)")
            }
        }
    }

    static func field(_ p: [String]) -> String {
        var s = ""
        for c in p { s += (c.hasPrefix("[") || s.isEmpty) ? c : "." + c }
        return s
    }

    public static func encode<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> [UInt8] {
        Array(try encodeString(v, pretty: pretty, indent: indent).utf8)
    }

    public static func encodeString<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> String {
        try JSONCoder.encode(v, indent: pretty ? indent : nil)
    }
}

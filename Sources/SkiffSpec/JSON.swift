import SkiffSys
import SkiffJSON

/// JSON for the runtime path, without FoundationEssentials (see SkiffJSON).
public enum JSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do { return try JSONCoder.decode(type, from: bytes) } catch let e as JSONDecodeError { throw SkiffError.msg("\(what): \(e)") }
    }

    public static func encode<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> [UInt8] {
        Array(try encodeString(v, pretty: pretty, indent: indent).utf8)
    }

    public static func encodeString<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> String {
        try JSONCoder.encode(v, indent: pretty ? indent : nil)
    }
}

import FoundationEssentials
import SkiffSys

public enum JSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(ctx) {
            throw SkiffError.msg("\(what): malformed JSON: \(ctx.debugDescription)\(pathText(ctx.codingPath))")
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw SkiffError.msg("\(what): missing field \(quote(fieldPath(ctx.codingPath + [key])))")
        } catch let DecodingError.typeMismatch(t, ctx) {
            throw SkiffError.msg("\(what): field \(quote(fieldPath(ctx.codingPath))) has the wrong type (expected \(t))")
        } catch let DecodingError.valueNotFound(t, ctx) {
            throw SkiffError.msg("\(what): field \(quote(fieldPath(ctx.codingPath))) is null (expected \(t))")
        } catch {
            throw SkiffError.msg("\(what): malformed JSON: \(error)")
        }
    }

    public static func encode<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        var bytes = Array(try e.encode(v))
        if pretty && indent != 2 { bytes = reindent(bytes, indent: indent) }
        return bytes
    }

    public static func encodeString<T: Encodable>(_ v: T, pretty: Bool = false, indent: Int = 2) throws -> String {
        String(decoding: try encode(v, pretty: pretty, indent: indent), as: UTF8.self)
    }

    /// JSONEncoder indents with 2 spaces; runc's features uses 4.
    static func reindent(_ b: [UInt8], indent: Int) -> [UInt8] {
        var out: [UInt8] = []
        var atLineStart = false
        for c in b {
            if c == UInt8(ascii: "\n") { out.append(c); atLineStart = true; continue }
            if atLineStart && c == UInt8(ascii: " ") {
                out.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: indent / 2))
                continue
            }
            atLineStart = false
            out.append(c)
        }
        return out
    }

    static func fieldPath(_ p: [any CodingKey]) -> String {
        p.map { k in k.intValue.map { "[\($0)]" } ?? k.stringValue }.joined(separator: ".").replacing(".[", with: "[")
    }

    static func pathText(_ p: [any CodingKey]) -> String { p.isEmpty ? "" : " at \(fieldPath(p))" }
}

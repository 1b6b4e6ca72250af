import Foundation

/// The one TOML reader of skiffctl, for config.toml and hosts.toml: `key = "string" | true/false |
/// ["a", "b"]`, `[dotted."quoted".table]` headers, comments. Anything else is an error naming
/// the file and line. (A subset: what the two files use.)
enum TOML {
    enum Value: Equatable { case string(String), bool(Bool), array([String]), table([String: Value]) }

    struct Table {
        var key: [String]
        var line: Int
        var values: [String: Value] = [:]
    }

    struct Document {
        var top: [String: Value] = [:]
        var tables: [Table] = []
    }

    static func parse(_ text: String, file: String, what: String) throws -> Document {
        var doc = Document()
        func fail(_ n: Int, _ why: String) -> ManagerError { ManagerError("read \(what)", file, "line \(n): \(why)") }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail(n, "unclosed table header") }
                doc.tables.append(Table(key: try splitKey(String(line.dropFirst().dropLast())), line: n))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail(n, "expected key = value") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let value = try parseValue(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces), fail: { fail(n, $0) })
            if doc.tables.isEmpty { doc.top[key] = value } else { doc.tables[doc.tables.count - 1].values[key] = value }
        }
        return doc
    }

    static func stripComment(_ s: String) -> String {
        var inString = false
        for (i, c) in s.enumerated() {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(s.prefix(i)) }
        }
        return s
    }

    static func splitKey(_ s: String) throws -> [String] {
        var out: [String] = [], cur = "", quoted = false
        for c in s {
            if c == "\"" { quoted.toggle(); continue }
            if c == "." && !quoted { out.append(cur.trimmingCharacters(in: .whitespaces)); cur = ""; continue }
            cur.append(c)
        }
        out.append(cur.trimmingCharacters(in: .whitespaces))
        return out
    }

    static func parseValue(_ v: String, fail: (String) -> ManagerError) throws -> Value {
        if v == "true" { return .bool(true) }
        if v == "false" { return .bool(false) }
        if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { return .string(String(v.dropFirst().dropLast())) }
        if v.hasPrefix("[") && v.hasSuffix("]") {
            let items = v.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return .array(
                try items.map { item in
                    guard item.hasPrefix("\""), item.hasSuffix("\""), item.count >= 2 else { throw fail("array items must be strings") }
                    return String(item.dropFirst().dropLast())
                })
        }
        throw fail("unsupported value \(v)")
    }
}

import XCTest
@testable import SkiffJSON
import SkiffSpec

final class JSONTests: XCTestCase {
    struct Sample: Codable, Equatable {
        var name: String
        var big: UInt64
        var neg: Int64
        var flag: Bool?
        var list: [Int32]
        var map: [String: String]
        var nested: [Sample]?
    }

    func testRoundTripKeepsFieldOrderAndExactNumbers() throws {
        let s = Sample(
            name: "é \"q\" \n", big: .max, neg: .min, flag: nil, list: [1, -2], map: ["b": "2", "a": "1"],
            nested: [Sample(name: "n", big: 0, neg: 0, flag: true, list: [], map: [:], nested: nil)])
        let text = try JSONCoder.encode(s)
        XCTAssertTrue(text.hasPrefix(#"{"name":"é \"q\" \n","big":18446744073709551615,"neg":-9223372036854775808,"list""#), text)
        XCTAssertTrue(text.contains(#""map":{"a":"1","b":"2"}"#), "dictionaries are sorted: \(text)")
        XCTAssertFalse(text.contains("flag\":null"), "nil optionals are omitted")
        XCTAssertEqual(try JSONCoder.decode(Sample.self, from: Array(text.utf8)), s)
    }

    func testParserAcceptsStandardJSONAndRejectsJunk() throws {
        let v = try JSONParser.parse(Array(#" {"a": [1, 2.5e3, -0, true, false, null, "\u00e9\ud83d\ude00"]} "#.utf8))
        XCTAssertEqual(v["a"], .array([.number("1"), .number("2.5e3"), .number("-0"), .bool(true), .bool(false), .null, .string("é😀")]))
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "{} x", "[01x]", String(repeating: "[", count: 600)] {
            XCTAssertThrowsError(try JSONParser.parse(Array(bad.utf8)), bad)
        }
    }

    func testPrettyOutputLikeGo() throws {
        XCTAssertEqual(try JSONCoder.encode(["k": [1]], indent: 2), "{\n  \"k\": [\n    1\n  ]\n}")
    }

    func testDecodeErrorsNameTheField() {
        XCTAssertThrowsError(try JSON.decode(Sample.self, from: Array(#"{"name":"x","big":-1}"#.utf8), what: "t")) { e in
            XCTAssertTrue("\(e)".contains("field \"big\""), "\(e)")
        }
        XCTAssertThrowsError(try JSON.decode(Sample.self, from: Array(#"{"name":"x","big":1,"neg":1,"list":["a"],"map":{}}"#.utf8), what: "t")) { e in
            XCTAssertTrue("\(e)".contains("list[0]"), "\(e)")
        }
        // Paths through nested objects and arrays, missing fields, and null where a value must be.
        let deep = #"{"name":"x","big":1,"neg":1,"list":[],"map":{},"nested":[{"name":"y","big":1,"neg":1,"list":[],"map":{"k":7}}]}"#
        XCTAssertThrowsError(try JSON.decode(Sample.self, from: Array(deep.utf8), what: "t")) { e in
            XCTAssertTrue("\(e)".contains("field \"nested[0].map.k\" has the wrong type (expected a string, found a number)"), "\(e)")
        }
        XCTAssertThrowsError(try JSON.decode(Sample.self, from: Array(#"{"name":"x","big":1,"neg":1,"map":{}}"#.utf8), what: "t")) { e in
            XCTAssertTrue("\(e)".contains("missing field \"list\""), "\(e)")
        }
        XCTAssertThrowsError(try JSON.decode(Sample.self, from: Array(#"{"name":null,"big":1,"neg":1,"list":[],"map":{}}"#.utf8), what: "t")) { e in
            XCTAssertTrue("\(e)".contains("field \"name\""), "\(e)")
        }
    }

    /// Members are found by a search in small objects and through an index in large ones; a key
    /// given twice means its last value either way (as Go's decoder reads it), and null means absent.
    func testMemberLookupSmallAndLargeObjects() throws {
        for extra in [0, 40] {
            var members = (0..<extra).map { "\"pad\($0)\":\($0)" }
            members += [#""name":"first""#, #""big":1"#, #""neg":-1"#, #""list":[3]"#, #""map":{"a":"1"}"#, #""flag":null"#, #""name":"last""#]
            let v = try JSONCoder.decode(Sample.self, from: Array(("{" + members.joined(separator: ",") + "}").utf8))
            XCTAssertEqual(v, Sample(name: "last", big: 1, neg: -1, flag: nil, list: [3], map: ["a": "1"], nested: nil), "\(extra) extra members")
        }
        let many = (0..<100).map { "\"k\($0)\":\"v\($0)\"" }.joined(separator: ",")
        let map = try JSONCoder.decode([String: String].self, from: Array(("{" + many + "}").utf8))
        XCTAssertEqual(map.count, 100)
        XCTAssertEqual(map["k99"], "v99")
    }

    /// A NUL in any string or member name of a runtime document is refused with its field, except
    /// in annotations; `\\u0000` (an escaped backslash, then text) is no NUL.
    func testNULBytesAreRefusedWithTheirField() throws {
        let spec = #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["/bin/echo","ok"]}}"#
        for (edit, field) in [
            (#""args":["/bin/echo\u0000x","ok"]"#, "process.args[0]"),
            (#""args":["/bin/echo","o\u0000k"]"#, "process.args[1]"),
            (#""args":["/bin/echo","ok"],"env":["A=b\u0000c"]"#, "process.env[0]"),
            (#""args":["/bin/echo","ok"],"x\u0000y":1"#, "process.x\\u0000y")
        ] {
            let text = spec.replacingOccurrences(of: #""args":["/bin/echo","ok"]"#, with: edit)
            for decode in [
                { _ = try JSON.decode(Spec.self, from: Array(text.utf8), what: "config") },
                { _ = try JSON.decode(ExecConfig.self, from: Array(text.utf8), what: "config") }
            ] {
                XCTAssertThrowsError(try decode(), text) { e in
                    XCTAssertTrue("\(e)".contains("field \"\(field)\": contains a NUL byte"), "\(e)")
                }
            }
        }
        let process = #"{"cwd":"/\u0000tmp","args":["sh"]}"#
        XCTAssertThrowsError(try JSON.decode(Process.self, from: Array(process.utf8), what: "process")) { e in
            XCTAssertTrue("\(e)".contains("field \"cwd\": contains a NUL byte"), "\(e)")
        }
        XCTAssertThrowsError(try JSON.decode([String: String].self, from: Array(#"{"memory.max\u0000":"1"}"#.utf8), what: "resources"))
        let annotated = spec.replacingOccurrences(of: #""root""#, with: #""annotations":{"a\u0000":"b\u0000"},"root""#)
        XCTAssertEqual(try JSON.decode(Spec.self, from: Array(annotated.utf8), what: "config").annotations?.count, 1)
        let escaped = spec.replacingOccurrences(of: "ok", with: #"a\\u0000"#)
        XCTAssertEqual(try JSON.decode(Spec.self, from: Array(escaped.utf8), what: "config").process?.args?[1], #"a\u0000"#)
        XCTAssertFalse(JSONValue.mayHoldNUL(Array(#"["\\u0000"]"#.utf8)))
        XCTAssertTrue(JSONValue.mayHoldNUL(Array(#"["\\\u0000"]"#.utf8)))
    }
}

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
    }
}

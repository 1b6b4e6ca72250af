import XCTest
import SkiffSpec
import SkiffWire
import SkiffTTRPC
import SkiffManager
import FuzzTargets

/// The fuzzers' corpora (fixtures/fuzz, grown by scripts/fuzz.sh) replayed through the same
/// parsers without instrumentation, so an input that once crashed stays fixed; and the two crashes
/// the fuzzers found, by name.
final class FuzzCorpusTests: XCTestCase {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/fixtures/fuzz"
    }()

    func corpus(_ name: String) throws -> [[UInt8]] {
        let dir = FuzzCorpusTests.root + "/" + name
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertFalse(files.isEmpty, "corpus \(name) is empty")
        return files.compactMap { FileManager.default.contents(atPath: dir + "/" + $0).map { [UInt8]($0) } }
    }

    func testSpecCorpus() throws {
        let decoded = try corpus("spec").filter { FuzzTargets.spec($0) }.count
        XCTAssertGreaterThan(decoded, 0)
    }

    func testWireCorpus() throws {
        for bytes in try corpus("wire") { FuzzTargets.wire(bytes) }
    }

    func testTarCorpus() throws {
        for bytes in try corpus("tar") { FuzzTargets.tar(bytes) }
    }

    func testCrashesTheFuzzersFound() throws {
        // A high surrogate followed by a \u that is not a low one: the code point sum overflowed.
        let s = try JSON.decode([String].self, from: Array(#"["\uD800\u0041"]"#.utf8), what: "t")
        XCTAssertEqual(s, ["\u{FFFD}A"])
        // A pax record whose length ends before its own space: an inverted range.
        var block = [UInt8](repeating: 0, count: 512)
        for (i, b) in "pax".utf8.enumerated() { block[i] = b }
        func octal(_ v: Int, _ at: Int, _ len: Int) { for (i, b) in String(format: "%0\(len - 1)o", v).utf8.enumerated() { block[at + i] = b } }
        octal(0o644, 100, 8); octal(4, 124, 12); block[156] = UInt8(ascii: "x")
        for i in 148..<156 { block[i] = 32 }
        octal(block.reduce(0) { $0 + Int($1) }, 148, 7)
        var bytes = block + Array("1 x\n".utf8) + [UInt8](repeating: 0, count: 508) + [UInt8](repeating: 0, count: 1024)
        bytes = Array(bytes)
        FuzzTargets.tar(bytes)  // must return, not trap
    }
}

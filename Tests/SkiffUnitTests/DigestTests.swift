import XCTest
import Foundation
import SkiffSys
@testable import SkiffManager

/// The manager's digests go through libcrypto (SHA extensions) when the host has it: it must
/// agree with the portable SHA-256 on every length and split, and a copied state must continue
/// on its own.
final class DigestTests: XCTestCase {
    func testLibcryptoAgreesWithThePortableCode() throws {
        if FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3") {
            XCTAssertNotNil(Digest.crypto, "libcrypto is installed but was not loaded")
        } else {
            print("libcrypto.so.3 not installed: only the portable path is checked")
        }
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 55, 56, 63, 64, 65, 127, 1000, (1 << 20) + 7] {
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let expected = "sha256:" + SHA256.hex(bytes)
            XCTAssertEqual(Digest.of(bytes), expected, "size \(size)")
            let split = size == 0 ? 0 : Int.random(in: 0...size, using: &rng)
            let d = Digest()
            d.update(Array(bytes[..<split]))
            let branch = d.copy()
            d.update(Array(bytes[split...]))
            XCTAssertEqual(d.finalize(), expected, "size \(size) split at \(split)")
            branch.update([0x42])
            XCTAssertEqual(branch.finalize(), "sha256:" + SHA256.hex(Array(bytes[..<split]) + [0x42]), "the copy went on by itself")
        }
        XCTAssertEqual(Digest.of([UInt8]("abc".utf8)), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

/// The one TOML reader behind config.toml and hosts.toml.
final class TOMLTests: XCTestCase {
    func testConfigAndHostsDocuments() throws {
        let doc = try TOML.parse(
            """
            root = "/r" # comment
            flag = true
            [host."https://m.example:5000"]
              capabilities = ["pull", "resolve"]
            [host."https://m.example:5000".header]
              x-a = "b"
            """, file: "t.toml", what: "hosts.toml")
        XCTAssertEqual(doc.top["root"], .string("/r"))
        XCTAssertEqual(doc.top["flag"], .bool(true))
        XCTAssertEqual(doc.tables.map(\.key), [["host", "https://m.example:5000"], ["host", "https://m.example:5000", "header"]])
        XCTAssertEqual(doc.tables[0].values["capabilities"], .array(["pull", "resolve"]))
        let hosts = try HostsDoc("server = \"https://r\"\n[host.\"https://m\"]\nskip_verify = true\n[host.\"https://m\".header]\nk = \"v\"\n", file: "h")
        XCTAssertEqual(hosts.server, "https://r")
        XCTAssertEqual(hosts.hosts.first?.0, "https://m")
        XCTAssertEqual(hosts.hosts.first?.1["header"], .table(["k": .string("v")]))
        for (bad, why) in [("a = 1", "line 1: unsupported value 1"), ("[x\n", "line 1: unclosed table header"), ("junk", "line 1: expected key = value")] {
            XCTAssertThrowsError(try TOML.parse(bad, file: "f", what: "config")) { XCTAssertTrue("\($0)".contains(why), "\($0)") }
        }
        XCTAssertThrowsError(try HostsDoc("[other]\n", file: "h")) { XCTAssertTrue("\($0)".contains("only [host.\"URL\"] tables"), "\($0)") }
    }
}

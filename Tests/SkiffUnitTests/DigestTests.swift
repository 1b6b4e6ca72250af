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

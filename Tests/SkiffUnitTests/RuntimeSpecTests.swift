import XCTest
import Foundation
import SkiffJSON
import SkiffSpec

/// runtime-spec/ stays true: support.json parses and names real fields, examples decode, the
/// valid ones validate and the invalid ones are rejected.
final class RuntimeSpecTests: XCTestCase {
    let dir: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/runtime-spec"
    }()

    func testSupportMatrixParses() throws {
        let v = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/support.json"))))
        guard case .object(let fields)? = v["fields"] else { return XCTFail("no fields") }
        XCTAssertGreaterThan(fields.count, 40)
        let statuses: Set<String> = ["supported", "validated", "ignored", "planned", "rejected"]
        for (name, entry) in fields {
            guard case .string(let st)? = entry["status"] else { return XCTFail("\(name) has no status") }
            XCTAssertTrue(statuses.contains(st), "\(name): \(st)")
        }
    }

    func testExamplesDecodeAndValidate() throws {
        let bundle = NSTemporaryDirectory() + "skiff-examples-\(UUID())"
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bundle) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/examples").filter { $0.hasSuffix(".json") }
        XCTAssertGreaterThanOrEqual(files.count, 4)
        for f in files {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/examples/" + f)))
            let spec = try JSON.decode(Spec.self, from: bytes, what: f)
            if f.hasPrefix("invalid-") {
                XCTAssertThrowsError(try Validation.validate(spec, bundle: bundle), f)
            } else {
                XCTAssertNoThrow(try Validation.validate(spec, bundle: bundle), f)
            }
        }
    }
}

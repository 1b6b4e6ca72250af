import XCTest
import Foundation
@testable import SkiffJSON
@testable import SkiffSpec

/// The hand-written readers of config.json and state.json (SpecReader.swift) against Codable,
/// which stays the reference: the same model or the same error text, for the runtime-spec
/// examples, the spec fuzz corpus, and every example with each member deleted, made null or
/// given a value of each other JSON type.
final class SpecReaderTests: XCTestCase {
    let top: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    func outcome<T: Encodable>(_ make: () throws -> T) -> String {
        do { return "ok " + (try JSONCoder.encode(try make())) } catch { return "error \(error)" }
    }

    /// Both paths on one document; returns whether it decoded.
    @discardableResult
    func same(_ bytes: [UInt8], _ note: String) -> Bool {
        let codable = outcome { try JSONCoder.decode(Spec.self, from: bytes) }
        let reader = outcome { try Spec(reading: try parse(bytes)) }
        XCTAssertEqual(reader, codable, note)
        if case .object(let m)? = try? JSONParser.parse(bytes), let p = m.last(where: { $0.0 == "process" })?.1 {
            let pc = outcome { try JSONCoder.decode(Process.self, value: p) }
            let pr = outcome { try Process(reading: p) }
            XCTAssertEqual(pr, pc, note + " (process)")
        }
        // ExecConfig is Decodable only: compare what it holds.
        func execSummary(_ e: ExecConfig) throws -> String {
            try JSONCoder.encode(e.process) + (try JSONCoder.encode(e.linux?.namespaces)) + (try JSONCoder.encode(e.linux?.seccomp))
        }
        let ec = outcome { try execSummary(try JSONCoder.decode(ExecConfig.self, from: bytes)) }
        let er = outcome { try execSummary(try ExecConfig(reading: try parse(bytes))) }
        XCTAssertEqual(er, ec, note + " (exec config)")
        return codable.hasPrefix("ok")
    }

    func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONCoder.parse(bytes) }

    /// `v` with the member at `path` changed by `edit` (nil: deleted).
    func edited(_ v: JSONValue, _ path: ArraySlice<String>, _ edit: JSONValue?) -> JSONValue {
        guard let key = path.first else { return edit ?? .null }
        switch v {
        case .object(let m):
            if path.count == 1, edit == nil { return .object(m.filter { $0.0 != key }) }
            return .object(m.map { $0.0 == key ? ($0.0, edited($0.1, path.dropFirst(), edit)) : $0 })
        case .array(let a):
            guard let i = Int(key), a.indices.contains(i) else { return v }
            if path.count == 1, edit == nil { return .array(a.enumerated().filter { $0.offset != i }.map(\.element)) }
            return .array(a.enumerated().map { $0.offset == i ? edited($0.element, path.dropFirst(), edit) : $0.element })
        default: return v
        }
    }

    func paths(_ v: JSONValue, _ prefix: [String] = []) -> [[String]] {
        switch v {
        case .object(let m): return m.flatMap { [prefix + [$0.0]] + paths($0.1, prefix + [$0.0]) }
        case .array(let a): return a.indices.flatMap { [prefix + [String($0)]] + paths(a[$0], prefix + [String($0)]) }
        default: return []
        }
    }

    func testExamplesAndEveryMutationDecodeAlike() throws {
        let dir = top + "/runtime-spec/examples"
        var decoded = 0, cases = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".json") {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            if same(bytes, name) { decoded += 1 }
            let doc = try JSONParser.parse(bytes)
            for p in paths(doc) {
                for edit: JSONValue? in [
                    nil, .null, .number("7"), .number("-1"), .number("99999999999"), .string("x"), .bool(true), .array([.number("1")]), .object([])
                ] {
                    cases += 1
                    same(Array(edited(doc, p[...], edit).serialized().utf8), "\(name) \(p) -> \(edit.map { $0.serialized() } ?? "deleted")")
                }
            }
        }
        XCTAssertGreaterThan(decoded, 2)
        XCTAssertGreaterThan(cases, 1000)
    }

    func testRepeatedKeysMeanTheLastValue() {
        for doc in [
            #"{"ociVersion":"1","annotations":{"a":1,"a":"x"}}"#, #"{"ociVersion":"1","annotations":{"a":"x","a":1}}"#,
            #"{"ociVersion":"1","linux":{"sysctl":{"k":null,"k":"v","j":"w"}}}"#, #"{"ociVersion":1,"ociVersion":"2"}"#
        ] {
            same(Array(doc.utf8), doc)
        }
    }

    func testFuzzCorpusDecodesAlike() throws {
        let dir = top + "/fixtures/fuzz/spec"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertGreaterThan(files.count, 100)
        for f in files { same(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))), f) }
    }

    func testContainerRecordReadsAndWritesAsCodable() throws {
        var r = ContainerRecord(
            id: "c1", ociVersion: "1.2.0", bundle: "/b \"q\"", rootfs: "/b/rootfs", pid: 42, startTime: 123_456_789_012,
            created: "2026-12-06T23:30:00.5Z", annotations: ["z": "1", "a": "é\n"], cgroupPath: "/sys/fs/cgroup/c1",
            poststart: [Hook(path: "/bin/true", args: ["true", "x"], env: nil, timeout: 5)], poststop: [], started: true, ownPidNamespace: false)
        for step in 0..<3 {
            let mine = JSON.encode(r)
            XCTAssertEqual(String(decoding: mine, as: UTF8.self), try JSONCoder.encode(r), "step \(step)")
            XCTAssertEqual(try JSONCoder.encode(try ContainerRecord(reading: try JSONParser.parse(mine))), try JSONCoder.encode(r))
            if step == 0 {
                r.namespacePaths = ["net": "/proc/1/ns/net"]; r.useSystemdCgroup = true; r.systemdUnit = "skiff-c1.scope"
                r.cgroupCreatedTop = "/sys/fs/cgroup/c1"; r.creatorPid = 7; r.creatorStartTime = 99; r.netDevices = ["eth1": "eth0"]
            } else {
                r.annotations = nil; r.poststart = nil; r.poststop = nil; r.cgroupPath = nil
            }
        }
        // Errors name the member as Codable does.
        for bad in [#"{"id":"c"}"#, #"{"id":1}"#, #"{"id":"c","ociVersion":"1","bundle":"/","rootfs":"/","pid":-1,"startTime":-5}"#] {
            let c = outcome { try JSONCoder.decode(ContainerRecord.self, from: Array(bad.utf8)) }
            let m = outcome { try ContainerRecord(reading: try JSONParser.parse(Array(bad.utf8))) }
            XCTAssertEqual(m, c, bad)
            XCTAssertTrue(m.hasPrefix("error"), m)
        }
    }
}

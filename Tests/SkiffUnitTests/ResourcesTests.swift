import XCTest
import Foundation
@testable import SkiffCgroups
import SkiffSpec

final class ResourcesTests: XCTestCase {
    func decode(_ json: String) throws -> Resources { try JSON.decode(Resources.self, from: Array(json.utf8), what: "r") }

    func testPlanMapsV1StyleResourcesToV2Files() throws {
        let r = try decode(
            #"""
            {"memory":{"limit":104857600,"reservation":52428800,"swap":209715200},
             "cpu":{"shares":1024,"quota":20000,"period":100000,"cpus":"0-1","mems":"0","burst":1000},
             "pids":{"limit":64},
             "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                        "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]},
             "hugepageLimits":[{"pageSize":"2MB","limit":0}],
             "rdma":{"mlx5_0":{"hcaHandles":3,"hcaObjects":100}},
             "unified":{"memory.high":"90000000"}}
            """#)
        let (w, warnings) = try CgroupResources.plan(r)
        let byFile = Dictionary(w.map { ($0.file + ($0.file == "io.max" ? "#" + $0.value : ""), $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byFile["memory.max"], "104857600")
        XCTAssertEqual(byFile["memory.low"], "52428800")
        XCTAssertEqual(byFile["memory.swap.max"], "104857600", "v2 swap excludes memory")
        XCTAssertEqual(byFile["cpu.weight"], "39")
        XCTAssertEqual(byFile["cpu.max"], "20000 100000")
        XCTAssertEqual(byFile["cpu.max.burst"], "1000")
        XCTAssertEqual(byFile["cpuset.cpus"], "0-1")
        XCTAssertEqual(byFile["pids.max"], "64")
        XCTAssertEqual(byFile["io.weight"], "default 4950")
        XCTAssertNotNil(byFile["io.max#8:0 rbps=1048576"])
        XCTAssertNotNil(byFile["io.max#8:0 wiops=100"])
        XCTAssertEqual(byFile["hugetlb.2MB.max"], "0")
        XCTAssertEqual(byFile["rdma.max"], "mlx5_0 hca_handle=3 hca_object=100")
        XCTAssertEqual(byFile["memory.high"], "90000000")
        XCTAssertEqual(warnings, [])
    }

    func testConversionsAndSpecialValues() throws {
        XCTAssertEqual(CgroupResources.cpuWeight(shares: 2), 1)
        XCTAssertEqual(CgroupResources.cpuWeight(shares: 262144), 10000)
        XCTAssertEqual(CgroupResources.ioWeight(10), 1)
        XCTAssertEqual(CgroupResources.ioWeight(1000), 10000)
        var (w, _) = try CgroupResources.plan(try decode(#"{"memory":{"limit":-1,"swap":-1},"pids":{"limit":-1},"cpu":{"quota":-1}}"#))
        XCTAssertEqual(w.map(\.value), ["max", "max", "max 100000", "max"])
        (w, _) = try CgroupResources.plan(try decode(#"{"cpu":{"shares":0}}"#))
        XCTAssertEqual(w, [])
    }

    func testRejectionsAndWarnings() throws {
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"cpu":{"realtimeRuntime":950000}}"#))) { e in
            XCTAssertTrue("\(e)".contains("realtime"))
        }
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"memory":{"limit":100,"swap":50}}"#)))
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"unified":{"../x":"1"}}"#)))
        let (_, warnings) = try CgroupResources.plan(try decode(#"{"memory":{"swappiness":10,"kernel":1,"disableOOMKiller":true}}"#))
        XCTAssertEqual(warnings.count, 3)
    }

    func testMissingControllerNamesItAndHostMode() throws {
        let mp = NSTemporaryDirectory() + "skiff-res-\(UUID())"
        try FileManager.default.createDirectory(atPath: mp + "/c", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mp) }
        try "cpu io\n".write(toFile: mp + "/cgroup.controllers", atomically: true, encoding: .utf8)
        try "".write(toFile: mp + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
        try "max 100000".write(toFile: mp + "/c/cpu.max", atomically: true, encoding: .utf8)  // cgroupfs has the file
        let cg = Cgroup2(mountpoint: mp, path: "/c")
        let r = try decode(#"{"memory":{"limit":1048576},"cpu":{"quota":1000,"period":10000}}"#)
        XCTAssertThrowsError(try cg.apply(r, skipUnavailable: false) { _ in }) { e in
            XCTAssertTrue("\(e)".contains("cgroup controller(s) memory not available"), "\(e)")
            XCTAssertTrue("\(e)".contains("host cgroup mode"), "\(e)")
        }
        var warned: [String] = []
        try cg.apply(r, skipUnavailable: true) { warned.append($0) }
        XCTAssertEqual(warned.count, 1)
        XCTAssertEqual(try String(contentsOfFile: mp + "/c/cpu.max", encoding: .utf8), "1000 10000")
        XCTAssertEqual(try String(contentsOfFile: mp + "/cgroup.subtree_control", encoding: .utf8), "+cpu", "controller enabled in the parent")
        XCTAssertFalse(FileManager.default.fileExists(atPath: mp + "/c/memory.max"))
    }
}

final class DeviceFilterTests: XCTestCase {
    func testRulesOrderAndDefaults() throws {
        // A node in linux.devices is created, not allowed (runc); redefining a default path drops
        // that default's rule.
        let rules = try DeviceFilter.rules(
            resources: [DeviceRule(allow: false, type: nil, major: nil, minor: nil, access: "rwm")],
            devices: [
                Device(type: "b", path: "/dev/sdz", major: 8, minor: 0, fileMode: nil, uid: nil, gid: nil),
                Device(type: "c", path: "/dev/null", major: 1, minor: 7, fileMode: nil, uid: nil, gid: nil)
            ])
        XCTAssertEqual(rules.first, DeviceRuleSpec(allow: false, type: "a", major: -1, minor: -1, access: "rwm"))
        XCTAssertFalse(rules.contains { $0.type == "b" && $0.major == 8 }, "creating /dev/sdz grants nothing")
        XCTAssertFalse(rules.contains { $0.major == 1 && $0.minor == 3 }, "the default /dev/null rule goes with the redefined node")
        XCTAssertEqual(rules.count, 1 + DeviceFilter.defaultAllowed.count - 1)
        XCTAssertThrowsError(try DeviceFilter.rules(resources: [DeviceRule(allow: true, type: "x", major: nil, minor: nil, access: nil)], devices: []))
        var warnings: [String] = []
        let tolerant = try DeviceFilter.rules(resources: [DeviceRule(allow: true, type: "c", major: 4, minor: 1, access: "rwa")], devices: []) {
            warnings.append($0)
        }
        XCTAssertEqual(tolerant.first, DeviceRuleSpec(allow: true, type: "c", major: 4, minor: 1, access: "rw"))
        XCTAssertEqual(warnings.count, 1)
    }

    func testProgramShapeAndJumpsStayInside() {
        let rules = [
            DeviceRuleSpec(allow: false, type: "a", major: -1, minor: -1, access: "rwm"),
            DeviceRuleSpec(allow: true, type: "c", major: 1, minor: 3, access: "rw")
        ]
        let p = DeviceFilter.program(rules)
        // 6 loads, rule 2 (3 checks + 3 access + 2), rule 1 unconditional (2) and nothing after it.
        XCTAssertEqual(p.count, 6 + 8 + 2)
        XCTAssertEqual(p.last! & 0xff, 0x95, "ends with exit")
        for (i, ins) in p.enumerated() where (ins & 0xff) == 0x56 {
            let off = Int(Int16(bitPattern: UInt16((ins >> 16) & 0xffff)))
            XCTAssertLessThan(i + 1 + off, p.count, "jump at \(i) stays inside the program")
        }
        // Without an unconditional rule the program ends with the default deny.
        let q = DeviceFilter.program([rules[1]])
        XCTAssertEqual(q.count, 6 + 8 + 2)
        XCTAssertEqual((q[q.count - 2] >> 32) & 0xffffffff, 0, "default deny")
    }
}

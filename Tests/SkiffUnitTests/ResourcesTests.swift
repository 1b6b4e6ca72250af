import XCTest
import Foundation
@testable import SkiffCgroups
import SkiffSpec

final class ResourcesTests: XCTestCase {
    func decode(_ json: String) throws -> Resources { try JSON.decode(Resources.self, from: Array(json.utf8), what: "r") }

    func testPlanMapsV1StyleResourcesToV2Files() throws {
        let r = try decode(#"""
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
        try "max 100000".write(toFile: mp + "/c/cpu.max", atomically: true, encoding: .utf8) // cgroupfs has the file
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

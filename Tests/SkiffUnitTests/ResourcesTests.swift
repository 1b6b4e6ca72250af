import XCTest
import Foundation
@testable import SkiffCgroups
import SkiffSpec
import CSkiffSys

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
        XCTAssertEqual(w.map(\.value), ["max", "max", "max", "max"])
        (w, _) = try CgroupResources.plan(try decode(#"{"cpu":{"shares":0}}"#))
        XCTAssertEqual(w, [])
        // runc's v2 readings: 0 leaves a value as it is (a memory limit of 0 used to mean an OOM
        // kill at once, a pids limit of 0 lifted the limit, a period of 0 wrote "Q 0"), and a
        // period absent keeps the cgroup's own.
        (w, _) = try CgroupResources.plan(try decode(#"{"memory":{"limit":0,"reservation":0,"swap":0},"pids":{"limit":0},"cpu":{"quota":0,"period":0}}"#))
        XCTAssertEqual(w, [])
        (w, _) = try CgroupResources.plan(try decode(#"{"cpu":{"quota":50000}}"#))
        XCTAssertEqual(w.map(\.value), ["50000"])
        (w, _) = try CgroupResources.plan(try decode(#"{"cpu":{"period":200000}}"#))
        XCTAssertEqual(w.map(\.value), ["max 200000"])
        (w, _) = try CgroupResources.plan(try decode(#"{"memory":{"limit":100,"swap":100}}"#))
        XCTAssertEqual(w.map(\.value), ["100", "0"], "swap equal to the limit: no swap")
    }

    func testRejectionsAndWarnings() throws {
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"cpu":{"realtimeRuntime":950000}}"#))) { e in
            XCTAssertTrue("\(e)".contains("realtime"))
        }
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"memory":{"limit":100,"swap":50}}"#)))
        // Values runc's v2 writes would have the kernel refuse, and skiff used to turn into "no
        // limit" or clamp without a word: refused up front, naming the field.
        for (json, why) in [
            (#"{"memory":{"limit":-2}}"#, "memory.limit -2 is not a size"), (#"{"memory":{"reservation":-5}}"#, "memory.reservation -5"),
            (#"{"memory":{"limit":100,"swap":-2}}"#, "memory.swap -2 is not a size"), (#"{"memory":{"swap":200}}"#, "needs memory.limit"),
            (#"{"cpu":{"shares":1}}"#, "cpu.shares 1 is outside"), (#"{"cpu":{"shares":300000}}"#, "cpu.shares 300000"),
            (#"{"blockIO":{"weight":5}}"#, "weight 5 is outside 10 to 1000"),
            (#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":1001}]}}"#, "weight 1001")
        ] {
            XCTAssertThrowsError(try CgroupResources.plan(try decode(json)), json) { e in XCTAssertTrue("\(e)".contains(why), "\(json): \(e)") }
        }
        XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"unified":{"../x":"1"}}"#)))
        // Keys that move host processes into the container's cgroup (or kill), and page sizes
        // that would make a path outside it, are refused.
        for key in ["cgroup.procs", "cgroup.threads", "cgroup.kill"] {
            XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"unified":{"\#(key)":"1"}}"#))) { e in
                XCTAssertTrue("\(e)".contains("not a resource"), "\(e)")
            }
        }
        for size in ["2MB/../../x", "../1GB", "", "MB", "2MBB"] {
            XCTAssertThrowsError(try CgroupResources.plan(try decode(#"{"hugepageLimits":[{"pageSize":"\#(size)","limit":1}]}"#)), size)
        }
        XCTAssertNoThrow(try CgroupResources.plan(try decode(#"{"hugepageLimits":[{"pageSize":"1GB","limit":1}],"unified":{"cgroup.max.depth":"2"}}"#)))
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
        // Device numbers are -1 (any) or 0..2^32-1: 2^32+1 would be truncated to major 1 (/dev/mem)
        // and -2 read as any.
        for (major, minor): (Int64?, Int64?) in [(4_294_967_297, 0), (-2, nil), (1, -5), (1, 4_294_967_296)] {
            XCTAssertThrowsError(
                try DeviceFilter.rules(resources: [DeviceRule(allow: true, type: "c", major: major, minor: minor, access: "rwm")], devices: [])
            ) {
                XCTAssertTrue("\($0)".contains("is not a device number"), "\($0)")
            }
        }
        XCTAssertNoThrow(try DeviceFilter.rules(resources: [DeviceRule(allow: true, type: "c", major: -1, minor: 4_294_967_295, access: "rwm")], devices: []))
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
        // runc's defaults are one group: 17 branches where a block per rule had 30.
        let defaults = DeviceFilter.defaultAllowed.map(\.rule)
        let branches = DeviceFilter.program(defaults).filter { [0x56, 0x16, 0x05].contains($0 & 0xff) }.count
        XCTAssertLessThanOrEqual(branches, 17)
        // A long run of alike rules is split into groups, so no jump outgrows its 16-bit offset
        // (33000 rules in one group trapped on the conversion).
        let many = (0..<33000).map { DeviceRuleSpec(allow: false, type: "c", major: Int64($0), minor: -1, access: "rwm") }
        let big = DeviceFilter.program(many)
        for (i, ins) in big.enumerated() where [0x56, 0x16, 0x05].contains(ins & 0xff) {
            let off = Int(Int16(bitPattern: UInt16((ins >> 16) & 0xffff)))
            XCTAssertGreaterThanOrEqual(off, 0)
            XCTAssertLessThan(i + 1 + off, big.count, "jump at \(i) stays inside the program")
        }
        let allowRest = DeviceFilter.program([DeviceRuleSpec(allow: true, type: "a", major: -1, minor: -1, access: "rwm")] + many)
        for major: UInt32 in [0, 1, 999, 1000, 17_000, 32_999] { XCTAssertEqual(run(allowRest, type: 2, access: 2, major: major, minor: 0), 0, "\(major)") }
        XCTAssertEqual(run(allowRest, type: 2, access: 2, major: 33000, minor: 0), 1)
        XCTAssertEqual(run(allowRest, type: 1, access: 2, major: 5, minor: 0), 1)
    }

    /// The instructions the program is made of, run as the kernel would: r1 points at
    /// (access << 16 | type, major, minor).
    func run(_ p: [UInt64], type: UInt32, access: UInt32, major: UInt32, minor: UInt32) -> UInt64? {
        var r = [UInt64](repeating: 0, count: 11)
        let ctx: [UInt32] = [access << 16 | type, major, minor]
        var pc = 0
        var steps = 0
        while pc < p.count, steps < 1_000_000 {
            steps += 1
            let i = p[pc]
            let code = UInt8(i & 0xff), dst = Int((i >> 8) & 0xf), src = Int((i >> 12) & 0xf)
            let off = Int(Int16(bitPattern: UInt16((i >> 16) & 0xffff)))
            let imm = UInt32(truncatingIfNeeded: i >> 32)
            pc += 1
            switch code {
            case 0x61: r[dst] = UInt64(ctx[off / 4])  // ldxw dst, [src + off]; src is r1
            case 0x54: r[dst] = UInt64(UInt32(truncatingIfNeeded: r[dst]) & imm)
            case 0x74: r[dst] = UInt64(UInt32(truncatingIfNeeded: r[dst]) >> imm)
            case 0xbc: r[dst] = UInt64(UInt32(truncatingIfNeeded: r[src]))
            case 0xb7: r[dst] = UInt64(bitPattern: Int64(Int32(bitPattern: imm)))
            case 0x56: if UInt32(truncatingIfNeeded: r[dst]) != imm { pc += off }
            case 0x16: if UInt32(truncatingIfNeeded: r[dst]) == imm { pc += off }
            case 0x05: pc += off
            case 0x95: return r[0]
            default: XCTFail("unexpected opcode \(code)"); return nil
            }
            if pc < 0 || pc > p.count { XCTFail("jump out of the program"); return nil }
        }
        XCTFail("fell off the end or looped")
        return nil
    }

    /// Grouping rules changes no verdict: every device and access is decided as the rules read
    /// one by one (last first, first match, default deny), over random rule lists; and the kernel's
    /// verifier accepts each program (no dead code, jumps inside).
    func testProgramDecidesAsTheRulesInOrder() {
        var x: UInt64 = 0x1234_5678_9ABC_DEF1
        func next(_ n: UInt64) -> Int { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return Int(x % n) }
        let accesses = ["m", "r", "w", "rw", "rm", "wm", "rwm"]
        let types: [Character] = ["a", "c", "b"]
        var loaded = 0
        for round in 0..<400 {
            var rules = round == 0 ? DeviceFilter.defaultAllowed.map(\.rule) : []
            for _ in 0..<(round == 0 ? 0 : 1 + next(12)) {
                // Runs of alike rules are what grouping works on: repeat the last one's verdict,
                // type and access often.
                if let last = rules.last, next(2) == 0 {
                    rules.append(.init(allow: last.allow, type: last.type, major: Int64(next(4)) - 1, minor: Int64(next(4)) - 1, access: last.access))
                } else {
                    rules.append(
                        .init(allow: next(3) != 0, type: types[next(3)], major: Int64(next(4)) - 1, minor: Int64(next(4)) - 1, access: accesses[next(7)]))
                }
            }
            let p = DeviceFilter.program(rules)
            for type: UInt32 in [1, 2] {
                for access: UInt32 in 1...7 {
                    for major: UInt32 in [0, 1, 2, 5, 136] {
                        for minor: UInt32 in [0, 1, 2, 3, 9] {
                            var want: UInt64 = 0
                            for r in rules.reversed() {
                                let t = r.type == "a" || (r.type == "b" ? 1 : 2) == type
                                let mj = r.major < 0 || UInt32(r.major) == major
                                let mn = r.minor < 0 || UInt32(r.minor) == minor
                                if t && mj && mn && access & ~DeviceFilter.accessMask(r.access) == 0 { want = r.allow ? 1 : 0; break }
                            }
                            XCTAssertEqual(run(p, type: type, access: access, major: major, minor: minor), want, "\(rules) \(type) \(access) \(major):\(minor)")
                        }
                    }
                }
            }
            if getuid() == 0 && round < 100 {
                let fd = p.withUnsafeBytes { skiff_bpf_load_device_prog($0.baseAddress, UInt32(p.count), nil, 0) }
                if fd >= 0 { loaded += 1; close(fd) } else if errno != EPERM { XCTFail("the verifier refused the program for \(rules): errno \(errno)") }
            }
        }
        if getuid() == 0 { print("device programs the kernel verified: \(loaded) of 100") }
    }
}

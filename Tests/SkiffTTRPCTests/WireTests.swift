import XCTest
import SwiftProtobuf
import SkiffProto
import SkiffWire

/// The shim's hand-written codec against swift-protobuf's generated code for the same .proto
/// files: the same values must give the same bytes, and each side must read the other's.
final class WireTests: XCTestCase {
    func same<G: SwiftProtobuf.Message>(_ ours: some ProtoMessage, _ theirs: G, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = ours.protoBytes()
        let b: [UInt8] = try theirs.serializedBytes()
        XCTAssertEqual(a, b, "\(G.protoMessageName) encodes differently", file: file, line: line)
        XCTAssertTrue(try G(serializedBytes: a).isEqualTo(message: theirs), "generated code reads ours", file: file, line: line)
    }

    func testTTRPCEnvelopes() throws {
        var req = TTRPCRequest()
        req.service = "containerd.task.v2.Task"; req.method = "Create"; req.payload = [1, 2, 3]; req.timeoutNano = 5_000_000_000
        var kv = TTRPCKeyValue(); kv.key = "containerd-namespace-ttrpc"; kv.value = "default"
        req.metadata = [kv]
        var g = Ttrpc_Request()
        g.service = req.service; g.method = req.method; g.payload = Data([1, 2, 3]); g.timeoutNano = 5_000_000_000
        var gkv = Ttrpc_KeyValue(); gkv.key = kv.key; gkv.value = kv.value
        g.metadata = [gkv]
        try same(req, g)
        XCTAssertEqual(try TTRPCRequest(protoBytes: try g.serializedBytes()), req)

        var resp = TTRPCResponse()
        var st = RPCStatus(); st.code = 5; st.message = "container \"x\" not created: not found"
        resp.status = st
        var gr = Ttrpc_Response()
        gr.status.code = 5; gr.status.message = st.message
        try same(resp, gr)
        // An OK response has no status at all.
        var ok = TTRPCResponse(); ok.payload = [8, 1]
        let back = try Ttrpc_Response(serializedBytes: ok.protoBytes())
        XCTAssertFalse(back.hasStatus)
        XCTAssertEqual([UInt8](back.payload), [8, 1])
    }

    func testTaskRequestsAndResponses() throws {
        var c = CreateTaskRequest()
        c.id = "c1"; c.bundle = "/run/b"; c.terminal = true; c.stdin = "/f/in"; c.stdout = "/f/out"; c.stderr = "/f/err"
        var m = SkiffWire.Mount(); m.type = "overlay"; m.source = "overlay"; m.options = ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"]
        c.rootfs = [m, m]
        c.options = ProtoAny(typeURL: "containerd.runc.v1.Options", value: [0x3a, 1, 0x78])
        var gc = Containerd_Task_V2_CreateTaskRequest()
        gc.id = "c1"; gc.bundle = "/run/b"; gc.terminal = true; gc.stdin = "/f/in"; gc.stdout = "/f/out"; gc.stderr = "/f/err"
        var gm = Containerd_Types_Mount(); gm.type = "overlay"; gm.source = "overlay"; gm.options = m.options
        gc.rootfs = [gm, gm]
        gc.options.typeURL = "containerd.runc.v1.Options"; gc.options.value = Data([0x3a, 1, 0x78])
        try same(c, gc)
        XCTAssertEqual(try CreateTaskRequest(protoBytes: try gc.serializedBytes()), c)

        var s = StateResponse()
        s.id = "e1"; s.bundle = "/b"; s.pid = 4242; s.status = .paused; s.terminal = true; s.exitStatus = 137
        s.exitedAt = ProtoTimestamp(seconds: -62135596800, nanos: 0); s.execID = "e1"
        var gs = Containerd_Task_V2_StateResponse()
        gs.id = "e1"; gs.bundle = "/b"; gs.pid = 4242; gs.status = .paused; gs.terminal = true; gs.exitStatus = 137
        gs.exitedAt = Google_Protobuf_Timestamp(seconds: -62135596800, nanos: 0); gs.execID = "e1"
        try same(s, gs)

        var k = KillRequest(); k.id = "c1"; k.execID = "x"; k.signal = 9; k.all = true
        var gk = Containerd_Task_V2_KillRequest(); gk.id = "c1"; gk.execID = "x"; gk.signal = 9; gk.all = true
        try same(k, gk)

        var d = DeleteResponse(); d.pid = 7; d.exitStatus = 3; d.exitedAt = ProtoTimestamp(seconds: 1_700_000_000, nanos: 999)
        var gd = Containerd_Task_V2_DeleteResponse(); gd.pid = 7; gd.exitStatus = 3
        gd.exitedAt = Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 999)
        try same(d, gd)

        var e = ExecProcessRequest(); e.id = "c1"; e.execID = "e1"; e.stdout = "/o"
        e.spec = ProtoAny(typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Array("{\"args\":[\"sh\"]}".utf8))
        var ge = Containerd_Task_V2_ExecProcessRequest(); ge.id = "c1"; ge.execID = "e1"; ge.stdout = "/o"
        ge.spec.typeURL = e.spec!.typeURL; ge.spec.value = Data(e.spec!.value)
        try same(e, ge)

        var p = PidsResponse()
        var info = ProcessInfo(); info.pid = 12
        var det = ProcessDetails(); det.execID = "e1"
        info.info = ProtoAny(typeURL: ProcessDetails.protoName, value: det.protoBytes())
        p.processes = [info]
        var gp = Containerd_Task_V2_PidsResponse()
        var gi = Containerd_Types_ProcessInfo(); gi.pid = 12
        var gdet = Containerd_Runc_V1_ProcessDetails(); gdet.execID = "e1"
        gi.info.typeURL = "containerd.runc.v1.ProcessDetails"; gi.info.value = try gdet.serializedBytes()
        gp.processes = [gi]
        try same(p, gp)

        var conn = ConnectResponse(); conn.shimPid = 1; conn.taskPid = 2; conn.version = "0.1"
        var gconn = Containerd_Task_V2_ConnectResponse(); gconn.shimPid = 1; gconn.taskPid = 2; gconn.version = "0.1"
        try same(conn, gconn)

        var o = RuncOptions(); o.binaryName = "skiff"; o.root = "/run/x"; o.systemdCgroup = true; o.ioUid = 1000
        var go = Containerd_Runc_V1_Options(); go.binaryName = "skiff"; go.root = "/run/x"; go.systemdCgroup = true; go.ioUid = 1000
        try same(o, go)
        XCTAssertEqual(try RuncOptions(protoBytes: try go.serializedBytes()), o)
    }

    func testEventsAndMetrics() throws {
        var ev = TaskCreate(); ev.containerID = "c1"; ev.bundle = "/b"; ev.pid = 9
        var io = TaskIO(); io.stdout = "/o"; io.terminal = true
        ev.io = io
        var gev = Containerd_Events_TaskCreate(); gev.containerID = "c1"; gev.bundle = "/b"; gev.pid = 9
        gev.io.stdout = "/o"; gev.io.terminal = true
        try same(ev, gev)

        var x = TaskExit(); x.containerID = "c1"; x.id = "c1"; x.pid = 9; x.exitStatus = 255; x.exitedAt = ProtoTimestamp(seconds: 5, nanos: 6)
        var gx = Containerd_Events_TaskExit(); gx.containerID = "c1"; gx.id = "c1"; gx.pid = 9; gx.exitStatus = 255
        gx.exitedAt = Google_Protobuf_Timestamp(seconds: 5, nanos: 6)
        try same(x, gx)

        var m = Metrics()
        var pids = PidsStat(); pids.current = 3; pids.limit = 100
        var cpu = CPUStat(); cpu.usageUsec = 1234; cpu.systemUsec = 1000
        var mem = MemoryStat(); mem.anon = 1 << 20; mem.usage = 2 << 20; mem.swapMaxUsage = 7
        var entry = IOEntry(); entry.major = 8; entry.minor = 0; entry.rbytes = 4096
        var iostat = IOStat(); iostat.usage = [entry, entry]
        var h = HugeTlbStat(); h.pagesize = "2MB"; h.current = 1
        var evs = MemoryEvents(); evs.oomKill = 2
        m.pids = pids; m.cpu = cpu; m.memory = mem; m.io = iostat; m.hugetlb = [h]; m.memoryEvents = evs
        var g = Io_Containerd_Cgroups_V2_Metrics()
        g.pids.current = 3; g.pids.limit = 100
        g.cpu.usageUsec = 1234; g.cpu.systemUsec = 1000
        g.memory.anon = 1 << 20; g.memory.usage = 2 << 20; g.memory.swapMaxUsage = 7
        var ge = Io_Containerd_Cgroups_V2_IOEntry(); ge.major = 8; ge.minor = 0; ge.rbytes = 4096
        g.io.usage = [ge, ge]
        var gh = Io_Containerd_Cgroups_V2_HugeTlbStat(); gh.pagesize = "2MB"; gh.current = 1
        g.hugetlb = [gh]
        g.memoryEvents.oomKill = 2
        try same(m, g)
    }

    func testUnknownFieldsAreSkippedAndMapsRead() throws {
        // A newer containerd may send fields we do not know (2.x Mount.target is known; field 99 is not).
        var g = Containerd_Task_V2_UpdateTaskRequest()
        g.id = "c1"
        g.annotations = ["a": "1", "b": "2"]
        var bytes: [UInt8] = try g.serializedBytes()
        bytes += [0xf8, 0x06, 0x01]  // field 111, varint 1
        bytes += [0x9a, 0x06, 0x02, 0x41, 0x42]  // field 99, bytes "AB"
        let u = try UpdateTaskRequest(protoBytes: bytes)
        XCTAssertEqual(u.id, "c1")
        XCTAssertEqual(u.annotations, ["a": "1", "b": "2"])
    }

    func testMalformedInputIsAnErrorNotACrash() {
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x0a, 0x05, 0x41])) { XCTAssertEqual($0 as? ProtoError, .truncated) }
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x08] + [UInt8](repeating: 0xff, count: 11))) { XCTAssertEqual($0 as? ProtoError, .badVarint) }
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x08, 0x01])) { XCTAssertEqual($0 as? ProtoError, .badWireType(field: 1, wire: 0)) }
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x0f])) { XCTAssertEqual($0 as? ProtoError, .badWireType(field: 1, wire: 7)) }
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x00]))  // field 0 does not exist
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x0a, 0x02, 0xc3, 0x28])) { XCTAssertEqual($0 as? ProtoError, .badUTF8(field: 1)) }
        // A NUL would cut an id, path or mount option short at the system call: refused, nested too.
        XCTAssertThrowsError(try StateRequest(protoBytes: [0x0a, 0x03, 0x61, 0x00, 0x62])) { XCTAssertEqual($0 as? ProtoError, .nulInString(field: 1)) }
        var create = CreateTaskRequest()
        create.id = "c1"
        var m = Mount()
        m.type = "bind"
        m.source = "/srv/a\u{0}b"
        m.options = ["rbind"]
        create.rootfs = [m]
        XCTAssertThrowsError(try CreateTaskRequest(protoBytes: create.protoBytes())) { XCTAssertEqual($0 as? ProtoError, .nulInString(field: 2)) }
        m.source = "/srv/ab"
        m.options = ["rbind", "ro\u{0}"]
        create.rootfs = [m]
        XCTAssertThrowsError(try CreateTaskRequest(protoBytes: create.protoBytes())) { XCTAssertEqual($0 as? ProtoError, .nulInString(field: 4)) }
        // Random bytes: errors or values, never a crash.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<64, using: &rng)
            let b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? CreateTaskRequest(protoBytes: b)
            _ = try? TTRPCRequest(protoBytes: b)
            _ = try? Metrics(protoBytes: b)
        }
    }
}

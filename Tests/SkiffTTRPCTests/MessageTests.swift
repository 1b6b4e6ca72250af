import XCTest
import SwiftProtobuf
import SkiffProto
@testable import SkiffTTRPC

/// The committed generated messages against the documented wire facts.
final class MessageTests: XCTestCase {
    func testRequestEnvelopeRoundTripInAFrame() throws {
        var req = Ttrpc_Request()
        req.service = "containerd.task.v2.Task"
        req.method = "State"
        var st = Containerd_Task_V2_StateRequest()
        st.id = "c1"
        req.payload = try st.serializedBytes()
        req.timeoutNano = 5_000_000_000
        var kv = Ttrpc_KeyValue()
        kv.key = "containerd-namespace-ttrpc"
        kv.value = "default"
        req.metadata = [kv]
        let frame = try Frame(streamID: 1, type: .request, data: try req.serializedBytes()).encoded()
        var r = FrameReader()
        r.append(frame)
        guard case .frame(let f)? = r.next() else { return XCTFail() }
        let back = try Ttrpc_Request(serializedBytes: f.data)
        XCTAssertEqual(back.method, "State")
        XCTAssertEqual(try Containerd_Task_V2_StateRequest(serializedBytes: back.payload).id, "c1")
        XCTAssertEqual(back.metadata.first?.value, "default")
    }

    func testEmptyPayloadIsAValidEmptyMessage() throws {
        XCTAssertEqual(try Google_Protobuf_Empty().serializedBytes() as [UInt8], [])
        XCTAssertEqual(try Containerd_Task_V2_WaitRequest(serializedBytes: [UInt8]()).id, "")
    }

    func testErrorResponseCarriesAStatus() throws {
        var resp = Ttrpc_Response()
        resp.status.code = StatusCode.unimplemented.rawValue
        resp.status.message = "method Frobnicate"
        let back = try Ttrpc_Response(serializedBytes: try resp.serializedBytes() as [UInt8])
        XCTAssertEqual(back.status.code, 12)
        XCTAssertEqual(back.payload, Data())
    }

    func testEventsUseBareTypeURLsAndGoZeroTime() throws {
        var exit = Containerd_Events_TaskExit()
        exit.containerID = "c1"
        exit.id = "c1"
        exit.exitStatus = 137
        exit.exitedAt = Google_Protobuf_Timestamp(seconds: -62135596800, nanos: 0)  // Go's zero time
        var any = Google_Protobuf_Any()
        any.typeURL = "containerd.events.TaskExit"  // containerd 1.6 resolves bare names only
        any.value = try exit.serializedBytes()
        var env = Containerd_Events_Envelope()
        env.topic = "/tasks/exit"
        env.namespace = "default"
        env.timestamp = Google_Protobuf_Timestamp(seconds: 1_700_000_000, nanos: 1)
        env.event = any
        var fwd = Containerd_Events_ForwardRequest()
        fwd.envelope = env
        let bytes: [UInt8] = try fwd.serializedBytes()
        let back = try Containerd_Events_ForwardRequest(serializedBytes: bytes)
        XCTAssertEqual(back.envelope.event.typeURL, "containerd.events.TaskExit")
        let decoded = try Containerd_Events_TaskExit(serializedBytes: back.envelope.event.value)
        XCTAssertEqual(decoded.exitedAt.seconds, -62135596800)
        XCTAssertEqual(decoded.exitStatus, 137)
        // A negative int64 is a 10-byte varint on the wire.
        let ts: [UInt8] = try Google_Protobuf_Timestamp(seconds: -62135596800, nanos: 0).serializedBytes()
        XCTAssertEqual(ts.count, 1 + 10)
    }

    func testRuncOptionsFromStart() throws {
        var o = Containerd_Runc_V1_Options()
        o.binaryName = "/usr/local/bin/skiff"
        o.root = "/run/containerd/runc"
        o.systemdCgroup = true
        var any = Google_Protobuf_Any()
        any.typeURL = "containerd.runc.v1.Options"
        any.value = try o.serializedBytes()
        let back = try Containerd_Runc_V1_Options(serializedBytes: try Google_Protobuf_Any(serializedBytes: try any.serializedBytes() as [UInt8]).value)
        XCTAssertEqual(back.binaryName, "/usr/local/bin/skiff")
        XCTAssertTrue(back.systemdCgroup)
    }
}

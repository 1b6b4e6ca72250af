import XCTest
import SkiffWire
import Glibc
import SwiftProtobuf
import SkiffProto
import CSkiffSys
import SkiffSys
@testable import SkiffTTRPC
import SkiffEventLoop

/// The server with an in-process client over a socketpair: no daemon, no containerd.
final class ServerTests: XCTestCase {
    var loop: EventLoop!
    var server: TTRPCServer!
    var client: Int32 = -1
    var reader = FrameReader()
    var pendingWait: TTRPCServer.Reply?

    override func setUpWithError() throws {
        loop = try EventLoop()
        server = TTRPCServer(loop: loop)
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        client = fds[0]
        _ = skiff_fcntl_setfl(client, skiff_fcntl_getfl(client) | O_NONBLOCK)
        try server.adopt(fds[1])
        server.register(service: "test.Svc", method: "Echo") { payload, md, reply in
            reply(.success(payload + Array((md["containerd-namespace-ttrpc"] ?? "").utf8)))
        }
        server.register(service: "test.Svc", method: "Wait") { [unowned self] _, _, reply in self.pendingWait = reply }
        server.register(service: "test.Svc", method: "Fail") { _, _, reply in reply(.failure(TTRPCStatus(.notFound, "no such thing"))) }
    }

    override func tearDown() { close(client) }

    func send(_ stream: UInt32, service: String = "test.Svc", method: String, payload: [UInt8] = [], ns: String? = nil) throws {
        var r = Ttrpc_Request()
        r.service = service
        r.method = method
        r.payload = Data(payload)
        if let ns { var kv = Ttrpc_KeyValue(); kv.key = "containerd-namespace-ttrpc"; kv.value = ns; r.metadata = [kv] }
        try sendRaw(try Frame(streamID: stream, type: .request, data: try r.serializedBytes()).encoded())
    }

    /// Writes everything, letting the server's loop drain the socket when it is full (one thread).
    func sendRaw(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let w = bytes[off...].withUnsafeBytes { write(client, $0.baseAddress, min($0.count, 1 << 16)) }
            if w > 0 { off += w } else { loop.runOnce(timeoutMs: 1) }
        }
    }

    /// Runs the loop until `count` responses arrived; returns them by stream id.
    func responses(_ count: Int) throws -> [UInt32: Ttrpc_Response] {
        var out: [UInt32: Ttrpc_Response] = [:]
        var buf = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<200 where out.count < count {
            loop.runOnce(timeoutMs: 10)
            var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) > 0 {
                let n = read(client, &buf, buf.count)
                if n > 0 { reader.append(buf[0..<n]) }
            }
            while case .frame(let f)? = reader.next() { out[f.streamID] = try Ttrpc_Response(serializedBytes: f.data) }
        }
        return out
    }

    /// A client that sends requests and never reads the replies: the server queued every reply
    /// (memory without bound) and read everything it was sent in one turn of the loop. Now it
    /// stops reading such a client once 16 MiB of replies wait, and takes the rest once they
    /// are read; every reply still arrives, in full.
    func testAClientThatDoesNotReadItsRepliesIsNotServedWithoutBound() throws {
        let big = [UInt8](repeating: 7, count: 1 << 20)
        server.register(service: "test.Svc", method: "Big") { _, _, reply in reply(.success(big)) }
        let count = 48
        var sent = 0
        var maxQueued = 0
        let serverFd = try XCTUnwrap(server.connections.keys.first)
        // Send all requests, running the loop in between, never reading a reply.
        for i in 0..<count {
            try send(UInt32(2 * i + 1), method: "Big")
            sent += 1
            for _ in 0..<4 { loop.runOnce(timeoutMs: 1) }
            maxQueued = max(maxQueued, server.connections[serverFd]?.out.count ?? 0)
        }
        for _ in 0..<50 { loop.runOnce(timeoutMs: 1) }
        maxQueued = max(maxQueued, server.connections[serverFd]?.out.count ?? 0)
        XCTAssertLessThanOrEqual(maxQueued, (16 << 20) + (2 << 20), "replies queued for a client that does not read")
        // Now read: every reply comes, whole.
        var got = 0
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(30)
        while got < count && Date() < deadline {
            loop.runOnce(timeoutMs: 0)
            let n = read(client, &buf, buf.count)
            if n > 0 { reader.append(buf[0..<n]) } else { usleep(200) }
            while case .frame(let f)? = reader.next() {
                let r = try Ttrpc_Response(serializedBytes: f.data)
                XCTAssertEqual(r.payload.count, big.count)
                got += 1
            }
        }
        XCTAssertEqual(got, count)
    }

    func testUnaryCallsAndMetadata() throws {
        try send(1, method: "Echo", payload: [1, 2], ns: "default")
        let r = try responses(1)
        XCTAssertEqual(r[1]?.status.code, 0)
        XCTAssertEqual([UInt8](r[1]!.payload), [1, 2] + Array("default".utf8))
    }

    func testAPendingWaitDoesNotBlockOtherRequestsOnTheSameConnection() throws {
        try send(1, method: "Wait")
        try send(3, method: "Echo", payload: [9])
        var r = try responses(1)
        XCTAssertNotNil(r[3], "Echo answered while Wait is pending")
        XCTAssertNil(r[1])
        pendingWait?(.success([42]))
        r = try responses(1)
        XCTAssertEqual([UInt8](r[1]!.payload), [42])
    }

    func testErrorsGetStatusCodes() throws {
        try send(1, method: "Fail")
        try send(3, service: "nope.Svc", method: "X")
        try send(5, method: "Nope")
        try send(6, method: "Echo")  // even stream id
        try send(7, method: "Echo")
        try send(7, method: "Echo")  // re-used stream id: answered on 7 again
        try sendRaw(try Frame(streamID: 9, type: .request, data: [0xff, 0xff, 0xff]).encoded())  // not a Request
        var r = try responses(6)
        XCTAssertEqual(r[1]?.status.code, StatusCode.notFound.rawValue)
        XCTAssertEqual(r[1]?.status.message, "no such thing")
        XCTAssertEqual(r[3]?.status.code, StatusCode.unimplemented.rawValue)
        XCTAssertEqual(r[3]?.status.message, "service nope.Svc")
        XCTAssertEqual(r[5]?.status.code, StatusCode.unimplemented.rawValue)
        XCTAssertEqual(r[6]?.status.code, StatusCode.invalidArgument.rawValue)
        XCTAssertEqual(r[9]?.status.code, StatusCode.invalidArgument.rawValue)
        XCTAssertEqual(r[7]?.status.code, StatusCode.invalidArgument.rawValue, "the second request on 7 is refused")
        XCTAssertEqual(r[7]?.status.message, "StreamID cannot be re-used and must increment")
        r = [:]
    }

    func testOversizedFrameGetsResourceExhaustedAndTheConnectionGoesOn() throws {
        let n = Frame.maxData + 100
        var big: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), 0, 0, 0, 1, 1, 0]
        big += [UInt8](repeating: 0, count: n)
        try sendRaw(big)
        try send(3, method: "Echo", payload: [5])
        let r = try responses(2)
        XCTAssertEqual(r[1]?.status.code, StatusCode.resourceExhausted.rawValue)
        XCTAssertEqual([UInt8](r[3]!.payload), [5])
    }

    func testDeferredReplyAfterDisconnectIsDropped() throws {
        var disconnected = false
        server.onDisconnect = { disconnected = true }
        try send(1, method: "Wait")
        _ = try responses(0)
        loop.runOnce(timeoutMs: 10)
        close(client)
        client = -1
        for _ in 0..<10 { loop.runOnce(timeoutMs: 5) }
        XCTAssertTrue(disconnected)
        pendingWait?(.success([1]))  // must not crash or write to a dead fd
    }
}

final class ClientTests: XCTestCase {
    func testClientAgainstTheServerOverAUnixSocket() throws {
        let path = "/tmp/skiff-ttrpc-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let lfd = try Sys.listenUnix(path, backlog: 8)
        defer { close(lfd); unlink(path) }

        let loop = try EventLoop()
        let server = TTRPCServer(loop: loop)
        server.register(service: "containerd.services.events.ttrpc.v1.Events", method: "Forward") { payload, md, reply in
            reply(md["containerd-namespace-ttrpc"] == "default" && payload.isEmpty ? .success([]) : .failure(TTRPCStatus(.invalidArgument, "namespace")))
        }
        server.register(service: "s", method: "Boom") { _, _, reply in reply(.failure(TTRPCStatus(.failedPrecondition, "boom"))) }
        try server.serve(listener: lfd)
        let background = BackgroundLoop(loop)
        defer { background.stop() }

        let client = try TTRPCClient.connect("unix://" + path)
        XCTAssertEqual(
            try client.call(
                service: "containerd.services.events.ttrpc.v1.Events", method: "Forward", payload: [],
                metadata: ["containerd-namespace-ttrpc": "default"]), [])
        XCTAssertThrowsError(try client.call(service: "s", method: "Boom", payload: [])) { e in
            XCTAssertEqual(e as? TTRPCStatus, TTRPCStatus(.failedPrecondition, "boom"))
        }
        XCTAssertThrowsError(try client.call(service: "s", method: "Missing", payload: [])) { e in
            XCTAssertEqual((e as? TTRPCStatus)?.code, .unimplemented)
        }
        XCTAssertEqual(client.nextStream, 7, "streams 1, 3, 5 were used")
    }
}

final class EventsTests: XCTestCase {
    func testForwardEnvelopeAndQueueing() throws {
        var exit = TaskExit()
        exit.containerID = "c1"
        exit.id = "c1"
        exit.exitStatus = 3
        exit.exitedAt = TaskEvents.zeroTime
        let bytes = try TaskEvents.forward(exit, namespace: "default")
        let req = try Containerd_Events_ForwardRequest(serializedBytes: bytes)
        XCTAssertEqual(req.envelope.topic, "/tasks/exit")
        XCTAssertEqual(req.envelope.namespace, "default")
        XCTAssertEqual(req.envelope.event.typeURL, "containerd.events.TaskExit")
        XCTAssertGreaterThan(req.envelope.timestamp.seconds, 1_600_000_000, "non-zero timestamp")

        // Nobody listens: events stay queued, in order, and go out once a server is there.
        let path = "/tmp/skiff-events-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let pub = EventPublisher(address: path, namespace: "default")
        var start = TaskStart()
        start.containerID = "c1"
        try pub.publish(start)
        try pub.publish(exit)
        XCTAssertEqual(pub.queue.count, 2)

        let lfd = try Sys.listenUnix(path, backlog: 8)
        defer { close(lfd); unlink(path) }
        let loop = try EventLoop()
        let server = TTRPCServer(loop: loop)
        let topics = UnsafeMutablePointer<[String]>.allocate(capacity: 1)
        topics.initialize(to: [])
        defer { topics.deinitialize(count: 1); topics.deallocate() }
        server.register(service: TaskEvents.service, method: "Forward") { payload, _, reply in
            if let r = try? Containerd_Events_ForwardRequest(serializedBytes: payload) { topics.pointee.append(r.envelope.topic) }
            reply(.success([]))
        }
        try server.serve(listener: lfd)
        let background = BackgroundLoop(loop)
        defer { background.stop() }
        pub.flush()
        XCTAssertEqual(pub.queue.count, 0)
        XCTAssertEqual(topics.pointee, ["/tasks/start", "/tasks/exit"], "start before exit, as containerd requires")
    }
}

/// Runs an EventLoop on its own thread while a test acts as the client; `stop` waits for the
/// thread to finish, so the loop is never used after the test lets go of it.
final class BackgroundLoop: @unchecked Sendable {
    let loop: EventLoop
    let lock = NSLock()
    var done = false
    let finished = DispatchSemaphore(value: 0)

    init(_ loop: EventLoop) {
        self.loop = loop
        Thread { [self] in
            while !isDone { loop.runOnce(timeoutMs: 5) }
            finished.signal()
        }.start()
    }

    var isDone: Bool { lock.lock(); defer { lock.unlock() }; return done }

    func stop() {
        lock.lock(); done = true; lock.unlock()
        finished.wait()
    }
}

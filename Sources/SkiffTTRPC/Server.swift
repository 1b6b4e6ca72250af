import Glibc
import CSkiffSys
import SkiffSys
import SkiffWire
import SkiffEventLoop

/// A status a handler replies with instead of a payload.
public struct TTRPCStatus: Error, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public init(_ code: StatusCode, _ message: String) { self.code = code; self.message = message }
    /// The shim's message as it is (it names the operation and object), or the code in words.
    public var description: String { message.isEmpty ? code.words : message }
}

extension StatusCode {
    /// How an error of this kind reads in a sentence (containerd's errdefs words).
    public var words: String {
        switch self {
        case .ok: return "ok"
        case .cancelled: return "cancelled"
        case .unknown: return "unknown error"
        case .invalidArgument: return "invalid argument"
        case .deadlineExceeded: return "deadline exceeded"
        case .notFound: return "not found"
        case .alreadyExists: return "already exists"
        case .permissionDenied: return "permission denied"
        case .resourceExhausted: return "resource exhausted"
        case .failedPrecondition: return "failed precondition"
        case .aborted: return "aborted"
        case .outOfRange: return "out of range"
        case .unimplemented: return "not implemented"
        case .internal: return "internal error"
        case .unavailable: return "unavailable"
        case .dataLoss: return "data loss"
        case .unauthenticated: return "unauthenticated"
        }
    }
}

/// A unary ttrpc server on an EventLoop. Requests on one connection are independent: a handler
/// may keep its reply (e.g. Task.Wait) while later requests on the same connection are answered.
public final class TTRPCServer {
    public typealias Reply = (Result<[UInt8], TTRPCStatus>) -> Void
    public typealias Handler = (_ payload: [UInt8], _ metadata: [String: String], _ reply: @escaping Reply) -> Void

    final class Connection {
        let fd: Int32
        let id: UInt64
        var reader = FrameReader()
        var out: [UInt8] = []
        var lastStream: UInt32 = 0
        var wantWrite = false
        /// Not read while its queued replies are past maxQueuedReplies.
        var readPaused = false
        init(fd: Int32, id: UInt64) { self.fd = fd; self.id = id }
    }

    let loop: EventLoop
    var services: [String: [String: Handler]] = [:]
    var connections: [Int32: Connection] = [:]
    var nextConnectionID: UInt64 = 1
    /// Called when a connection closes (the shim exits once containerd is gone after Shutdown).
    public var onDisconnect: (() -> Void)?

    public init(loop: EventLoop) { self.loop = loop }

    public func register(service: String, method: String, _ handler: @escaping Handler) {
        services[service, default: [:]][method] = handler
    }

    /// Serves an already listening socket.
    public func serve(listener: Int32) throws {
        _ = skiff_fcntl_setfl(listener, skiff_fcntl_getfl(listener) | O_NONBLOCK)
        try loop.add(listener) { [unowned self] _ in
            while true {
                let c = skiff_accept(listener)
                if c < 0 { break }
                try? self.adopt(c)
            }
        }
    }

    /// Serves one connected stream socket (tests use a socketpair).
    public func adopt(_ fd: Int32) throws {
        _ = skiff_fcntl_setfl(fd, skiff_fcntl_getfl(fd) | O_NONBLOCK)
        let conn = Connection(fd: fd, id: nextConnectionID)
        nextConnectionID += 1
        connections[fd] = conn
        try loop.add(fd) { [unowned self] ev in self.event(conn, ev) }
    }

    /// Bytes read from one connection per wakeup (the loop is level-triggered: the rest waits
    /// for the next turn), so one busy client cannot hold the loop and every other container.
    static let readPerWakeup = 1 << 20
    /// Replies queued for a client that does not read them: past this, its requests are not
    /// read until it has taken its replies (memory stays bounded).
    static let maxQueuedReplies = 16 << 20

    func event(_ c: Connection, _ ev: UInt32) {
        if ev & SKIFF_EPOLLOUT != 0 { flush(c) }
        guard connections[c.fd] === c else { return }
        if ev & (SKIFF_EPOLLIN | SKIFF_EPOLLHUP | SKIFF_EPOLLERR) != 0 {
            var buf = [UInt8](repeating: 0, count: 65536)
            var taken = 0
            while taken < TTRPCServer.readPerWakeup && c.out.count <= TTRPCServer.maxQueuedReplies {
                let n = buf.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    taken += n
                    c.reader.append(buf[0..<n])
                    // Frames are handled as they complete: what is buffered is one frame's part.
                    while let e = c.reader.next() { handle(c, e) }
                    guard connections[c.fd] === c else { return }
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
                closeConnection(c)
                return
            }
        }
    }

    func closeConnection(_ c: Connection) {
        guard connections[c.fd] === c else { return }
        loop.remove(c.fd)
        connections[c.fd] = nil
        close(c.fd)
        onDisconnect?()
    }

    func handle(_ c: Connection, _ e: FrameEvent) {
        switch e {
        case .oversize(let stream, let length):
            respond(
                c, stream,
                .failure(
                    TTRPCStatus(
                        .resourceExhausted,
                        "message length \(length) exceed maximum message size of \(Frame.maxData)")))
        case .frame(let f):
            guard f.type == MessageType.request.rawValue else { return }  // unknown types are ignored
            if f.streamID % 2 == 0 {
                respond(c, f.streamID, .failure(TTRPCStatus(.invalidArgument, "StreamID must be odd for client initiated streams")))
                return
            }
            if f.streamID <= c.lastStream {
                respond(c, f.streamID, .failure(TTRPCStatus(.invalidArgument, "StreamID cannot be re-used and must increment")))
                return
            }
            c.lastStream = f.streamID
            let req: TTRPCRequest
            do { req = try TTRPCRequest(protoBytes: f.data) } catch {
                respond(c, f.streamID, .failure(TTRPCStatus(.invalidArgument, "unmarshal request error: \(error)")))
                return
            }
            guard let methods = services[req.service] else {
                respond(c, f.streamID, .failure(TTRPCStatus(.unimplemented, "service \(req.service)")))
                return
            }
            guard let h = methods[req.method] else {
                respond(c, f.streamID, .failure(TTRPCStatus(.unimplemented, "method \(req.method)")))
                return
            }
            var md: [String: String] = [:]
            for kv in req.metadata { md[kv.key.lowercased()] = kv.value }
            let stream = f.streamID
            let connID = c.id
            h(req.payload, md) { [weak self] result in
                // The connection may be gone (or its fd reused) by the time a deferred reply comes.
                guard let self, let conn = self.connections[c.fd], conn.id == connID else { return }
                self.respond(conn, stream, result)
            }
        }
    }

    func respond(_ c: Connection, _ stream: UInt32, _ result: Result<[UInt8], TTRPCStatus>) {
        var resp = TTRPCResponse()
        switch result {
        case .success(let payload): resp.payload = payload
        case .failure(let st):
            var status = RPCStatus()
            status.code = st.code.rawValue
            status.message = st.message
            resp.status = status
        }
        guard let frame = try? Frame(streamID: stream, type: .response, data: resp.protoBytes()).encoded() else { return }
        c.out += frame
        flush(c)
    }

    func flush(_ c: Connection) {
        while !c.out.isEmpty {
            let n = c.out.withUnsafeBytes { write(c.fd, $0.baseAddress, $0.count) }
            if n > 0 { c.out.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            closeConnection(c)
            return
        }
        let want = !c.out.isEmpty
        let full = c.out.count > TTRPCServer.maxQueuedReplies
        if want != c.wantWrite || full != c.readPaused {
            c.wantWrite = want
            c.readPaused = full
            loop.modify(c.fd, events: (full ? 0 : SKIFF_EPOLLIN) | (want ? SKIFF_EPOLLOUT : 0))
        }
    }
}

import Glibc
import CSkiffSys
import SkiffSys
import SkiffWire

/// A minimal blocking ttrpc client (the shim uses it to forward events to containerd). Stream
/// ids are 1, 3, 5, ... per connection, as ttrpc 1.2 servers require.
public final class TTRPCClient {
    let fd: Int32
    var nextStream: UInt32 = 1
    var reader = FrameReader()
    var pending: [UInt32: [UInt8]] = [:]

    public init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// Connects to a unix socket path; a `unix://` prefix is accepted.
    public static func connect(_ address: String) throws -> TTRPCClient {
        let path = address.hasPrefix("unix://") ? String(address.dropFirst(7)) : address
        return TTRPCClient(fd: try Sys.connectUnix(path))
    }

    /// One unary call; a non-OK status is thrown as TTRPCStatus.
    public func call(
        service: String, method: String, payload: [UInt8], metadata: [String: String] = [:],
        timeoutMs: Int32 = 5000
    ) throws -> [UInt8] {
        let stream = try send(service: service, method: method, payload: payload, metadata: metadata, timeoutMs: timeoutMs)
        return try receive(stream: stream, timeoutMs: timeoutMs, what: "\(service)/\(method)")
    }

    /// Sends a request without waiting; the reply is taken later with `receive` (several calls
    /// can be in flight on one connection, e.g. a Wait and the requests that end it).
    public func send(
        service: String, method: String, payload: [UInt8], metadata: [String: String] = [:],
        timeoutMs: Int32 = 5000
    ) throws -> UInt32 {
        var req = TTRPCRequest()
        req.service = service
        req.method = method
        req.payload = payload
        req.timeoutNano = Int64(timeoutMs) * 1_000_000
        req.metadata = metadata.sorted { $0.key < $1.key }.map { kv in
            var m = TTRPCKeyValue()
            m.key = kv.key
            m.value = kv.value
            return m
        }
        let stream = nextStream
        nextStream += 2
        try FS.writeAll(fd: fd, try Frame(streamID: stream, type: .request, data: req.protoBytes()).encoded())
        return stream
    }

    /// The reply on `stream`; replies to other streams that arrive meanwhile are kept.
    public func receive(stream: UInt32, timeoutMs: Int32 = 5000, what: String = "ttrpc call") throws -> [UInt8] {
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            while pending[stream] == nil, let e = reader.next() {
                guard case .frame(let f) = e, f.type == MessageType.response.rawValue else { continue }
                pending[f.streamID] = f.data
            }
            if let data = pending.removeValue(forKey: stream) {
                let resp = try TTRPCResponse(protoBytes: data)
                if let st = resp.status, st.code != 0 {
                    throw TTRPCStatus(StatusCode(rawValue: st.code) ?? .unknown, st.message)
                }
                return resp.payload
            }
            let now = monotonicNanos()
            if now >= deadline { throw TTRPCStatus(.deadlineExceeded, "\(what): no reply in \(timeoutMs) ms") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1)
            if r < 0 && errno != EINTR { throw SkiffError.sys("poll", "ttrpc connection") }
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { throw TTRPCStatus(.unavailable, "\(what): connection closed") }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw SkiffError.sys("read", "ttrpc connection") }
            reader.append(buf[0..<n])
        }
    }
}

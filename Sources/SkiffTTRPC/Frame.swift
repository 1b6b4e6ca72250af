/// ttrpc framing: a 10-byte big-endian header (length, stream id, type, flags) and up to 4 MiB of
/// data. Pure byte handling, so it is unit-tested without sockets; the shim's epoll loop feeds
/// `FrameReader` whatever `read(2)` returned.
public enum MessageType: UInt8, Sendable {
    case request = 1
    case response = 2
    case data = 3
}

public struct Frame: Equatable, Sendable {
    public static let headerSize = 10
    public static let maxData = 4 << 20

    public var streamID: UInt32
    public var type: UInt8
    public var flags: UInt8
    public var data: [UInt8]

    public init(streamID: UInt32, type: MessageType, flags: UInt8 = 0, data: [UInt8]) {
        self.streamID = streamID; self.type = type.rawValue; self.flags = flags; self.data = data
    }

    /// The frame on the wire. Refuses data above the 4 MiB limit, as a ttrpc sender must.
    public func encoded() throws -> [UInt8] {
        guard data.count <= Frame.maxData else { throw TTRPCError.tooLarge(data.count) }
        var out = [UInt8]()
        out.reserveCapacity(Frame.headerSize + data.count)
        let n = UInt32(data.count)
        out += [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        out += [UInt8(streamID >> 24), UInt8(streamID >> 16 & 0xff), UInt8(streamID >> 8 & 0xff), UInt8(streamID & 0xff)]
        out += [type, flags]
        out += data
        return out
    }
}

public enum TTRPCError: Error, Equatable, CustomStringConvertible {
    case tooLarge(Int)
    public var description: String {
        switch self {
        case .tooLarge(let n): return "ttrpc: message length \(n) exceeds maximum message size of \(Frame.maxData)"
        }
    }
}

/// What the reader produced from the bytes seen so far.
public enum FrameEvent: Equatable, Sendable {
    case frame(Frame)
    /// A frame above the limit: its data was skipped; the receiver answers RESOURCE_EXHAUSTED on its stream.
    case oversize(streamID: UInt32, length: Int)
}

/// Incremental decoder: append bytes, take complete frames. Oversized frames are skipped without
/// buffering their data.
public struct FrameReader {
    var buffer: [UInt8] = []
    var start = 0
    /// Bytes of an oversized frame still to discard.
    var skipping = 0

    public init() {}

    public mutating func append(_ bytes: ArraySlice<UInt8>) { buffer += bytes }
    public mutating func append(_ bytes: [UInt8]) { buffer += bytes }

    public var buffered: Int { buffer.count - start }

    public mutating func next() -> FrameEvent? {
        if skipping > 0 {
            let n = min(skipping, buffer.count - start)
            start += n
            skipping -= n
            compact()
            if skipping > 0 { return nil }
        }
        guard buffer.count - start >= Frame.headerSize else { return nil }
        let h = buffer[start..<(start + Frame.headerSize)].map { UInt32($0) }
        let length = Int(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3])
        let stream = h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7]
        let type = UInt8(h[8]), flags = UInt8(h[9])
        if length > Frame.maxData {
            // Discard what is already buffered of it; the rest is dropped as it arrives.
            start += Frame.headerSize
            let n = min(length, buffer.count - start)
            start += n
            skipping = length - n
            compact()
            return .oversize(streamID: stream, length: length)
        }
        guard buffer.count - start - Frame.headerSize >= length else { return nil }
        let dataStart = start + Frame.headerSize
        let f = Frame(
            streamID: stream, type: MessageType(rawValue: type) ?? .data, flags: flags,
            data: Array(buffer[dataStart..<(dataStart + length)]))
        var frame = f
        frame.type = type  // keep unknown types as sent; the server ignores them
        start = dataStart + length
        compact()
        return .frame(frame)
    }

    mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true); start = 0
        } else if start > 65536 {
            buffer.removeFirst(start); start = 0
        }
    }
}

/// gRPC status codes, as ttrpc carries them in Response.status.code.
public enum StatusCode: Int32, Sendable {
    case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4, notFound = 5, alreadyExists = 6,
        permissionDenied = 7, resourceExhausted = 8, failedPrecondition = 9, aborted = 10, outOfRange = 11,
        unimplemented = 12, `internal` = 13, unavailable = 14, dataLoss = 15, unauthenticated = 16
}

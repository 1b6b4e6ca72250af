import XCTest
@testable import SkiffTTRPC

final class FrameTests: XCTestCase {
    func testHeaderLayoutIsBigEndian() throws {
        let f = Frame(streamID: 0x0102_0304, type: .request, flags: 0, data: [0xaa, 0xbb])
        XCTAssertEqual(try f.encoded(), [0, 0, 0, 2, 1, 2, 3, 4, 1, 0, 0xaa, 0xbb])
    }

    func testReaderHandlesPartialAndBackToBackFrames() throws {
        let a = try Frame(streamID: 1, type: .request, data: Array(repeating: 7, count: 300)).encoded()
        let b = try Frame(streamID: 3, type: .request, data: []).encoded()
        var r = FrameReader()
        let all = a + b
        var got: [FrameEvent] = []
        for i in stride(from: 0, to: all.count, by: 7) {
            r.append(all[i..<min(i + 7, all.count)])
            while let e = r.next() { got.append(e) }
        }
        XCTAssertEqual(got.count, 2)
        guard case .frame(let f1) = got[0], case .frame(let f2) = got[1] else { return XCTFail("\(got)") }
        XCTAssertEqual(f1.streamID, 1)
        XCTAssertEqual(f1.data.count, 300)
        XCTAssertEqual(f2.streamID, 3)
        XCTAssertEqual(f2.data, [], "an empty payload is a valid Empty message")
        XCTAssertEqual(r.buffered, 0)
    }

    func testOversizedFrameIsSkippedAndReported() throws {
        var r = FrameReader()
        let n = Frame.maxData + 1
        r.append([UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), 0, 0, 0, 5, 1, 0])
        XCTAssertEqual(r.next(), .oversize(streamID: 5, length: n))
        // Its data arrives in pieces and is dropped; the next frame decodes normally.
        r.append([UInt8](repeating: 0, count: n - 10))
        XCTAssertNil(r.next())
        r.append([UInt8](repeating: 0, count: 10))
        r.append(try Frame(streamID: 7, type: .request, data: [1]).encoded())
        XCTAssertEqual(r.next(), .frame(Frame(streamID: 7, type: .request, data: [1])))
        XCTAssertThrowsError(try Frame(streamID: 1, type: .response, data: [UInt8](repeating: 0, count: n)).encoded())
    }

    func testFrameRightAfterAnOversizedOneIsKept() throws {
        var r = FrameReader()
        let n = Frame.maxData + 3
        var bytes: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), 0, 0, 0, 1, 1, 0]
        bytes += [UInt8](repeating: 1, count: n)
        bytes += try Frame(streamID: 3, type: .request, data: [2]).encoded()
        r.append(bytes)
        XCTAssertEqual(r.next(), .oversize(streamID: 1, length: n))
        XCTAssertEqual(r.next(), .frame(Frame(streamID: 3, type: .request, data: [2])))
        XCTAssertNil(r.next())
    }

    func testUnknownTypeIsKeptForTheServerToIgnore() throws {
        var r = FrameReader()
        r.append([0, 0, 0, 0, 0, 0, 0, 9, 0x7f, 0])
        guard case .frame(let f)? = r.next() else { return XCTFail() }
        XCTAssertEqual(f.type, 0x7f)
    }
}

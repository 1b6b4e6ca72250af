import XCTest
import Foundation
@testable import SkiffShimIO

final class LogTests: XCTestCase {
    func testLogURIs() throws {
        XCTAssertEqual(try LogTarget.parse(""), .none)
        XCTAssertEqual(try LogTarget.parse("/run/containerd/fifo/1-stdout"), .fifo("/run/containerd/fifo/1-stdout"))
        XCTAssertEqual(try LogTarget.parse("file:///var/log/c1.log"), .file(path: "/var/log/c1.log", maxSize: nil, maxFiles: 1))
        XCTAssertEqual(
            try LogTarget.parse("file:///var/log/my%20c.log?maxsize=1024&maxfiles=3"),
            .file(path: "/var/log/my c.log", maxSize: 1024, maxFiles: 3))
        XCTAssertEqual(
            try LogTarget.parse("binary:///usr/bin/logger?tag=web&level=info"),
            .binary(path: "/usr/bin/logger", args: ["tag": "web", "level": "info"]))
        for bad in ["file://relative/x", "ftp:///x", "file:///x?maxsize=0", "file:///x?maxfiles=0", "file:///x?maxsize=abc"] {
            XCTAssertThrowsError(try LogTarget.parse(bad), bad)
        }
    }

    func testRotationKeepsEveryLineAndBoundsTheFiles() throws {
        let dir = NSTemporaryDirectory() + "skiff-log-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try RotatingLog(path: dir + "/c.log", maxSize: 100, maxFiles: 3)
        for i in 0..<30 { try log.write(Array(String(format: "line %03d\n", i).utf8)) }  // 9 bytes each
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(files, ["c.log", "c.log.1", "c.log.2"])
        for f in files {
            let size = try FileManager.default.attributesOfItem(atPath: dir + "/" + f)[.size] as! Int
            XCTAssertLessThanOrEqual(size, 100, f)
        }
        // The newest lines are all there, in order, across the files.
        let text = try ["c.log.2", "c.log.1", "c.log"].map { try String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }.joined()
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.last, "line 029")
        XCTAssertEqual(lines.count, Set(lines).count)
        let nums = lines.map { Int($0.dropFirst(5))! }
        XCTAssertEqual(nums, Array(nums.first!...29), "contiguous: nothing dropped inside the kept window")
    }

    /// The shim is one thread: a log path that is a FIFO with no reader blocked its open, and
    /// with it every container of the shim. A FIFO, and a symlink at the path (to whatever root
    /// would then append to or truncate), are refused at once.
    func testALogThatIsNotARegularFileIsRefusedWithoutWaiting() throws {
        let dir = NSTemporaryDirectory() + "skiff-log-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o600), 0)
        let started = Date()
        XCTAssertThrowsError(try RotatingLog(path: dir + "/fifo", maxSize: nil, maxFiles: 1)) { e in
            XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        try "precious\n".write(toFile: dir + "/victim", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.log", withDestinationPath: dir + "/victim")
        XCTAssertThrowsError(try RotatingLog(path: dir + "/link.log", maxSize: 10, maxFiles: 1))
        XCTAssertEqual(try String(contentsOfFile: dir + "/victim", encoding: .utf8), "precious\n")
        // One file rotates by emptying the file it holds, not whatever is at the path by then.
        let log = try RotatingLog(path: dir + "/one.log", maxSize: 10, maxFiles: 1)
        try log.write(Array("12345678\n".utf8))
        try FileManager.default.moveItem(atPath: dir + "/one.log", toPath: dir + "/moved.log")
        try FileManager.default.createSymbolicLink(atPath: dir + "/one.log", withDestinationPath: dir + "/victim")
        try log.write(Array("abcdefgh\n".utf8))
        XCTAssertEqual(try String(contentsOfFile: dir + "/victim", encoding: .utf8), "precious\n")
        XCTAssertEqual(try String(contentsOfFile: dir + "/moved.log", encoding: .utf8), "abcdefgh\n")
    }

    /// A rotation that fails (here `c.log.1` is a directory) leaves the log on the file it had:
    /// it used to close its fd first and, at the next write, close that number again, whatever
    /// the shim had opened on it since.
    func testAFailedRotationKeepsItsFile() throws {
        let dir = NSTemporaryDirectory() + "skiff-log-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir + "/c.log.1/x", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try RotatingLog(path: dir + "/c.log", maxSize: 10, maxFiles: 2)
        try log.write(Array("12345678\n".utf8))
        XCTAssertThrowsError(try log.write(Array("abcdefgh\n".utf8)))
        let other = open(dir + "/other", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(other) }
        XCTAssertThrowsError(try log.write(Array("abcdefgh\n".utf8)))
        XCTAssertNotEqual(fcntl(other, F_GETFD), -1, "the failed rotation closed a descriptor it no longer owned")
        try FileManager.default.removeItem(atPath: dir + "/c.log.1")
        try log.write(Array("abcdefgh\n".utf8))
        XCTAssertEqual(try String(contentsOfFile: dir + "/c.log.1", encoding: .utf8), "12345678\n")
        XCTAssertEqual(try String(contentsOfFile: dir + "/c.log", encoding: .utf8), "abcdefgh\n")
    }

    func testAppendsToAnExistingFile() throws {
        let path = NSTemporaryDirectory() + "skiff-log-\(UUID()).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "old\n".write(toFile: path, atomically: true, encoding: .utf8)
        try RotatingLog(path: path, maxSize: nil, maxFiles: 1).write(Array("new\n".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old\nnew\n")
    }
}

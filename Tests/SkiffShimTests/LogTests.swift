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

    /// A rotation that fails writes on into the current file (nothing is lost, nothing moved),
    /// tries again once that file has grown by another maxSize, and never closes a descriptor
    /// it no longer owns. Here a directory holds the last place, which nothing may be moved into.
    func testAFailedRotationKeepsItsFile() throws {
        let dir = NSTemporaryDirectory() + "skiff-log-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir + "/c.log.1/x", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let read = { (name: String) in (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "<none>" }
        let log = try RotatingLog(path: dir + "/c.log", maxSize: 10, maxFiles: 2)
        try log.write(Array("12345678\n".utf8))
        try log.write(Array("abcdefgh\n".utf8))
        XCTAssertNotNil(log.rotationError)
        XCTAssertEqual(read("c.log"), "12345678\nabcdefgh\n", "written on, past the size")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/c.log.1/x"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["c.log", "c.log.1"])
        let other = open(dir + "/other", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(other) }
        try FileManager.default.removeItem(atPath: dir + "/c.log.1")
        try log.write(Array("ABCDEFGH\n".utf8))
        XCTAssertEqual(read("c.log.1"), "<none>", "not tried again before another maxSize")
        try log.write(Array("zzzzzzzz\n".utf8))
        XCTAssertNil(log.rotationError)
        XCTAssertEqual(read("c.log.1"), "12345678\nabcdefgh\nABCDEFGH\n")
        XCTAssertEqual(read("c.log"), "zzzzzzzz\n")
        XCTAssertNotEqual(fcntl(other, F_GETFD), -1, "the rotation closed a descriptor it no longer owned")
    }

    /// Out of file descriptors when the new file is opened: the kept files stay where they were
    /// (they used to shift one place at each try, the oldest lost) and the output is kept.
    func testARotationWithoutADescriptorMovesNothing() throws {
        let dir = NSTemporaryDirectory() + "skiff-log-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let read = { (name: String) in (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "<none>" }
        try "old1\n".write(toFile: dir + "/c.log.1", atomically: false, encoding: .utf8)
        let log = try RotatingLog(path: dir + "/c.log", maxSize: 10, maxFiles: 3)
        try log.write(Array("12345678\n".utf8))
        // The lowest free descriptor becomes the limit: the next open fails with EMFILE.
        var saved = rlimit()
        XCTAssertEqual(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &saved), 0)
        let lowest = dup(0)
        close(lowest)
        var low = saved
        low.rlim_cur = rlim_t(lowest)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &low), 0)
        var caught: Error?
        do { try log.write(Array("abcdefgh\n".utf8)) } catch { caught = error }
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &saved), 0)
        XCTAssertNil(caught, "the output is kept")
        XCTAssertTrue("\(log.rotationError.map { "\($0)" } ?? "")".contains("too many open files"), "\(String(describing: log.rotationError))")
        XCTAssertEqual(read("c.log"), "12345678\nabcdefgh\n")
        XCTAssertEqual(read("c.log.1"), "old1\n")
        XCTAssertEqual(read("c.log.2"), "<none>")
        try log.write(Array("ABCDEFGH\n".utf8))
        try log.write(Array("zzzzzzzz\n".utf8))
        XCTAssertEqual(read("c.log.2"), "old1\n")
        XCTAssertEqual(read("c.log.1"), "12345678\nabcdefgh\nABCDEFGH\n")
        XCTAssertEqual(read("c.log"), "zzzzzzzz\n")
    }

    func testAppendsToAnExistingFile() throws {
        let path = NSTemporaryDirectory() + "skiff-log-\(UUID()).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "old\n".write(toFile: path, atomically: true, encoding: .utf8)
        try RotatingLog(path: path, maxSize: nil, maxFiles: 1).write(Array("new\n".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old\nnew\n")
    }
}

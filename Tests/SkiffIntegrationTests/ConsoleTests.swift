import Foundation
import XCTest
import Glibc
import SkiffSys

/// `--console-socket`: a receiver listening like containerd's or conmon's gets the pty master.
final class ConsoleTests: XCTestCase {
    func listen(_ path: String) throws -> Int32 { try Sys.listenUnix(path, backlog: 16) }

    func testConsoleSocketReceivesAWorkingPty() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.process["terminal"] = true
        b.process["consoleSize"] = ["height": 40, "width": 100]
        b.args(["/bin/sh", "-c", "/bin/skiff-payload tty; stty size; read line; echo got:$line"])
        let sockPath = b.base + "/console.sock"
        let lfd = try listen(sockPath)
        defer { close(lfd) }
        let r = b.rt(["create", "--bundle", b.dir, "--console-socket", sockPath, "c1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        var pl = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&pl, 1, 5000), 1, "no connection on the console socket")
        let conn = accept(lfd, nil, nil)
        XCTAssertGreaterThanOrEqual(conn, 0)
        defer { close(conn) }
        let (master, name) = try Sys.recvFd(conn)
        defer { close(master) }
        XCTAssertFalse(name.isEmpty, "the message carries at least one byte")
        XCTAssertEqual(b.rt(["start", "c1"]).code, 0)
        try FS.writeAll(fd: master, "hello\n")
        var out = ""
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(10)
        while !out.contains("got:hello") && Date() < deadline {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 200) > 0 {
                let n = read(master, &buf, buf.count)
                if n <= 0 { break }
                out += String(decoding: buf[0..<n], as: UTF8.self)
            }
        }
        XCTAssertTrue(out.contains("isatty=1"), out)
        XCTAssertTrue(out.contains("tty=/dev/pts/"), out)
        XCTAssertTrue(out.contains("40 100"), "consoleSize applied: \(out)")
        XCTAssertTrue(out.contains("got:hello"), out)
    }

    func testTerminalWithoutConsoleSocketIsRejectedForCreate() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.process["terminal"] = true
        let r = b.rt(["create", "--bundle", b.dir, "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("console socket"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
    }

    func testConsoleSocketWithoutTerminalIsRejected() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let r = b.rt(["create", "--bundle", b.dir, "--console-socket", b.base + "/x.sock", "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("console socket"), r.stderr)
    }

    func testForegroundRunWithTerminalProxiesOutput() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.process["terminal"] = true
        b.payload("tty", "exit", "5")
        let r = b.run()
        XCTAssertEqual(r.code, 5, r.stderr)
        XCTAssertTrue(r.stdout.contains("isatty=1"), r.stdout)
    }
}

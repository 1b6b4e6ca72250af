import Foundation
import XCTest

/// Container-escape classes, one regression test each.
final class EscapeTests: XCTestCase {
    /// CVE-2019-5736's way in: while `skiff exec` joins a container it is the host's skiff binary
    /// running inside the container's pid namespace; a process there that can open
    /// /proc/PID/exe could later write the binary. skiff is not dumpable until execve, so the
    /// link cannot be followed. A watcher in the container records every exe it can read while
    /// exec runs again and again; none may be skiff's.
    func testExecIsNotReachableThroughProcExe() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]])
        b.args(["/bin/sh", "-c", "while :; do for p in /proc/[0-9]*; do readlink $p/exe 2>/dev/null; done >> /tmp/seen; done"])
        try b.write()
        var r = b.rt(["run", "-d", "--bundle", b.dir, "w1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        for _ in 0..<40 {
            r = b.rt(["exec", "w1", "/bin/true"])
            XCTAssertEqual(r.code, 0, r.stderr)
        }
        r = b.rt(["exec", "w1", "/bin/sh", "-c", "sort -u /tmp/seen"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let seen = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertFalse(seen.isEmpty, "the watcher ran")
        let runtime = (Env.skiff as NSString).lastPathComponent
        let leaked = seen.filter { $0.hasSuffix("/" + runtime) || $0.contains("(unreachable)") || !$0.hasPrefix("/bin/") }
        XCTAssertEqual(leaked, [], "exe links of skiff processes were readable from the container: \(seen)")
    }
}

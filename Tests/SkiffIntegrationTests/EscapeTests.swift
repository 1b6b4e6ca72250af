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

    /// CVE-2019-5736 through the container's init: between `create` and `start` the init is our
    /// binary, inside the container. A process holding /proc/PID/exe (opened O_PATH, as the exploit
    /// does; a pod sharing the pid namespace, or a hook, can) reopens it for writing once nothing
    /// executes it. skiff re-executes itself from a read-only overlayfs view first, so the reopen
    /// fails with EROFS; with the guard skipped, the same steps get the host binary writable,
    /// which shows that the test can see the hole.
    func testCreatedInitExeCannotBeReopenedForWriting() throws {
        try Env.requireRoot()
        XCTAssertEqual(try reopenInitExe(guarded: true), EROFS)
        XCTAssertEqual(try reopenInitExe(guarded: false), 0, "control: without the guard the binary is writable")
    }

    /// Returns the errno of reopening the created init's exe for writing (0: it opened).
    private func reopenInitExe(guarded: Bool) throws -> Int32 {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/true"])
        try b.write()
        var env = ProcessInfo.processInfo.environment
        if !guarded { env["SKIFF_EXE_GUARD"] = "off" }
        // `-root`: one dash, as runc's flag parser also accepts; the guard must see the command.
        var r = Cmd.run(Env.skiff, ["-root", b.stateRoot, "create", "--bundle", b.dir, "e1"], env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
        r = b.rt(["state", "e1"])
        guard let pid = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["pid"] as? Int else {
            XCTFail("no pid: \(r.stdout) \(r.stderr)")
            return -1
        }
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "(unreadable)"
        if guarded { XCTAssertNotEqual(link, Host.realPath(Env.skiff), "exe is the host binary: \(link)") }
        let held = open("/proc/\(pid)/exe", oPath | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(held, 0)
        defer { close(held) }
        r = b.rt(["start", "e1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        for _ in 0..<200 where Host.processAlive(pid_t(pid)) { usleep(10_000) }  // the init exec'd true and exited
        let w = open("/proc/self/fd/\(held)", O_WRONLY | O_CLOEXEC)  // no O_TRUNC: nothing is written
        let err = w < 0 ? errno : 0
        if w >= 0 { close(w) }
        return err
    }

    /// The `#!/proc/self/exe` variant through `skiff exec`: the exec'd program is a script whose
    /// interpreter is /proc/self/exe, so the kernel runs our binary as a process of the container.
    /// Here it blocks opening its --log FIFO, the test grabs its exe like a hostile neighbour
    /// would, lets it finish, and tries to reopen the binary for writing: EROFS.
    func testExecOfProcSelfExeScriptCannotReachHostBinary() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]])
        b.args(["/bin/sleep", "60"])
        try b.write()
        var r = b.rt(["run", "-d", "--bundle", b.dir, "x1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = b.rt(["exec", "x1", "/bin/sh", "-c", "printf '#!/proc/self/exe --log=/tmp/evil.fifo\\n' > /tmp/evil && chmod +x /tmp/evil && mkfifo /tmp/evil.fifo"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let exec = Background([Env.skiff, "--root", b.stateRoot, "exec", "x1", "/tmp/evil"])
        defer { exec.stop(SIGKILL) }
        var pid: Int32 = 0
        for _ in 0..<500 {
            if let p = Host.processes(mentioning: "--log=/tmp/evil.fifo").first(where: { p in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p)/cwd")) != nil && p != exec.pid
            }) { pid = p; break }
            usleep(10_000)
        }
        XCTAssertGreaterThan(pid, 0, "the script's interpreter (our binary) did not start")
        guard pid > 0 else { return }
        let held = open("/proc/\(pid)/exe", oPath | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(held, 0)
        defer { close(held) }
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "(unreadable)"
        XCTAssertNotEqual(link, Host.realPath(Env.skiff), "exe is the host binary: \(link)")
        // Unblock it: it opens the FIFO for writing, logs "unknown command" and exits.
        let fifo = open("/proc/\(pid)/root/tmp/evil.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fifo, 0)
        for _ in 0..<500 where Host.processAlive(pid) { usleep(10_000) }
        if fifo >= 0 { close(fifo) }
        XCTAssertFalse(Host.processAlive(pid))
        let w = open("/proc/self/fd/\(held)", O_WRONLY | O_CLOEXEC)
        let err = w < 0 ? errno : 0
        if w >= 0 { close(w) }
        XCTAssertEqual(err, EROFS, "the host binary could be reopened for writing")
    }
}

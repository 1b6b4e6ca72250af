import Foundation
import XCTest
import CSkiffSys

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
        r = b.rt(["exec", "x1", "/bin/sh", "-c", "printf '#!/proc/self/exe --log=/tmp/evil.fifo\\n' > /tmp/evil && chmod +x /tmp/evil && mkfifo /tmp/evil.fifo"]
        )
        XCTAssertEqual(r.code, 0, r.stderr)
        let exec = Background([Env.skiff, "--root", b.stateRoot, "exec", "x1", "/tmp/evil"])
        defer { exec.stop(SIGKILL) }
        var pid: Int32 = 0
        for _ in 0..<500 {
            if let p = Host.processes(mentioning: "--log=/tmp/evil.fifo").first(where: { p in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p)/cwd")) != nil && p != exec.pid
            }) {
                pid = p; break
            }
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

    /// CVE-2024-21626: a cwd of /proc/self/fd/N names whatever the runtime holds at fd N when it
    /// changes directory (the container's cgroup, its state directory). `run` with every such cwd
    /// from 3 to 64 (and the other magic links) must be refused, and nothing of the host read or
    /// written. Before the fix, fds 4 and 5 printed the host's secret and wrote the host file.
    func testInitCwdThroughHostFdsIsRefused() throws {
        try Env.requireRoot()
        let probe = try EscapeProbe()
        let b = try TestBundle()
        defer { b.cleanup() }
        for (i, cwd) in EscapeProbe.hostileCwds.enumerated() {
            b.process["cwd"] = cwd
            b.args(["/bin/sh", "-c", probe.script("run-\(i)")])
            let r = b.run("c\(i)")
            XCTAssertEqual(probe.leaks(r.stdout), [], "cwd \(cwd)")
            XCTAssertNotEqual(r.code, 0, "cwd \(cwd) was accepted: \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("process.cwd") || r.stderr.contains("chdir"), "cwd \(cwd): \(r.stderr)")
        }
        XCTAssertEqual(b.rt(["list", "-q"]).stdout, "", "refused creates leave nothing")
    }

    /// The same through `exec --cwd` (and a process.json) into a running container.
    func testExecCwdThroughHostFdsIsRefused() throws {
        try Env.requireRoot()
        let probe = try EscapeProbe()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/sleep", "60"])
        b.addMount(["destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["mode=0700"]])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        for (i, cwd) in EscapeProbe.hostileCwds.enumerated() {
            let r = b.rt(["exec", "--cwd", cwd, "x1", "/bin/sh", "-c", probe.script("exec-\(i)")])
            XCTAssertEqual(probe.leaks(r.stdout), [], "cwd \(cwd)")
            XCTAssertNotEqual(r.code, 0, "cwd \(cwd) was accepted: \(r.stdout)")
        }
        let process = b.base + "/process.json"
        try #"{"args":["/bin/sh","-c","\#(probe.script("p"))"],"cwd":"/proc/self/fd/3","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#
            .write(toFile: process, atomically: true, encoding: .utf8)
        let r = b.rt(["exec", "-p", process, "x1"])
        XCTAssertEqual(probe.leaks(r.stdout), [])
        XCTAssertNotEqual(r.code, 0)
        // A legitimate cwd still works, also one only root can search for a non-root user.
        let priv = b.rt(["exec", "--cwd", "/private", "-u", "1000", "x1", "/bin/sh", "-c", "pwd; ls . 2>&1 >/dev/null | grep -c denied"])
        XCTAssertEqual(priv.stdout, "/private\n1\n", priv.stderr)
    }

    /// The CVE-2024-21626 class through the terminal: `exec -t` opened the container's /dev/ptmx
    /// by path while it held the host's cgroup directory open, so a container that made
    /// /dev/ptmx a link to /proc/self/fd/N/../../.. had the runtime open a host file read-write
    /// (and ioctl it). Every fd from 3 to 20 is tried; the link is refused before anything is
    /// opened, and a terminal still works once /dev/ptmx is the devpts one again.
    func testExecTerminalThroughHostFdsIsRefused() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let target = b.base + "/host-target"
        FileManager.default.createFile(atPath: target, contents: Data("host".utf8))
        b.args(["/bin/sleep", "60"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        let up = String(repeating: "../", count: 40)
        for n in 3...20 {
            let link = "/proc/self/fd/\(n)/\(up)\(target.dropFirst())"
            XCTAssertEqual(b.rt(["exec", "x1", "/bin/ln", "-sfn", link, "/dev/ptmx"]).code, 0)
            let r = b.rt(["exec", "-t", "x1", "/bin/true"])
            XCTAssertNotEqual(r.code, 0, "fd \(n): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("open \"/dev/ptmx\""), "fd \(n): the host file was opened: \(r.stderr)")
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "host")
        // Another device there is refused too; devpts's link and a 5:2 node (what privileged specs
        // make, listing the host's /dev/ptmx in linux.devices) work.
        XCTAssertEqual(b.rt(["exec", "--cap", "CAP_MKNOD", "x1", "/bin/sh", "-c", "rm -f /dev/ptmx && mknod /dev/ptmx c 1 3"]).code, 0)
        var r = b.rt(["exec", "-t", "x1", "/bin/true"])
        XCTAssertTrue(r.code != 0 && r.stderr.contains("not a pty master"), r.stderr)
        for make in ["ln -sfn pts/ptmx /dev/ptmx", "rm -f /dev/ptmx && mknod -m 666 /dev/ptmx c 5 2"] {
            XCTAssertEqual(b.rt(["exec", "--cap", "CAP_MKNOD", "x1", "/bin/sh", "-c", make]).code, 0)
            r = b.rt(["exec", "-t", "x1", "/bin/sh", "-c", "tty; echo fine"])
            XCTAssertEqual(r.code, 0, "\(make): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("/dev/pts/") && r.stdout.contains("fine"), "\(make): \(r.stdout)")
        }
    }

    /// When clone3 cannot put exec's process into the container's cgroup (CLONE_INTO_CGROUP
    /// refused: EBUSY once the container enables controllers below itself, an old kernel, a
    /// seccomp'd caller), the process joined it by writing `<host cgroup>/cgroup.procs` by path
    /// after it had joined the container's mount namespace: a container with its own
    /// /sys/fs/cgroup (a tmpfs here) got the write in a file of its own, and the exec'd process
    /// stayed in the caller's cgroup, outside the container's limits, device filter and kill.
    /// It now joins through the directory's fd. clone3 is made to fail with strace.
    func testExecJoinsTheCgroupThroughItsDirectoryNotAPathInTheContainer() throws {
        try Env.requireRoot()
        try Env.requireStrace("make clone3 fail")
        let b = try TestBundle()
        defer { b.cleanup() }
        b.config["mounts"] = (b.config["mounts"] as? [[String: Any]] ?? []).filter { $0["destination"] as? String != "/sys/fs/cgroup" }
        b.addMount(["destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "nosuid", "nodev"]])
        b.args(["/bin/sleep", "60"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        let state = try String(contentsOfFile: b.stateRoot + "/x1/state.json", encoding: .utf8)
        let dir = try XCTUnwrap(state.firstMatch(of: #/"cgroupPath":"([^"]+)"/#)?.1).description
        let fake = dir + "/cgroup.procs"
        XCTAssertEqual(b.rt(["exec", "x1", "/bin/sh", "-c", "mkdir -p \(dir) && : > \(fake)"]).code, 0)
        let r = Cmd.run(
            "/usr/bin/strace",
            ["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone3", "-e", "inject=clone3:error=ENOSYS", b.runtime, "--root", b.stateRoot]
                + ["exec", "x1", "/bin/cat", "/proc/1/cgroup", "/proc/self/cgroup"], cwd: b.dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        // The init's and the exec'd process's cgroup, both as the container sees them.
        let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("0::") }
        XCTAssertEqual(lines.count, 2, r.stdout)
        XCTAssertEqual(lines.first, lines.last, "the exec'd process is not in the container's cgroup: \(r.stdout)")
        XCTAssertEqual(b.rt(["exec", "x1", "/bin/cat", fake]).stdout, "", "the join was written into the container's own file")
    }

    /// exec gives stdio to the process user, except the null device; which one that is, it asked
    /// the container's /dev/null, so a container that made /dev/null a regular file had the
    /// caller's /dev/null, the host's, chowned to the exec's user (who could then chmod it for
    /// the whole host). The host's stays root's.
    func testExecAsAnotherUserLeavesTheHostDevNullAlone() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        var before = stat()
        XCTAssertEqual(stat("/dev/null", &before), 0)
        defer {
            chown("/dev/null", before.st_uid, before.st_gid)
            chmod("/dev/null", before.st_mode & 0o7777)
        }
        b.args(["/bin/sleep", "60"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        XCTAssertEqual(b.rt(["exec", "x1", "/bin/sh", "-c", "rm -f /dev/null && echo fake > /dev/null"]).code, 0)
        // The runtime's stdin is the host's /dev/null (Cmd.run).
        let r = b.rt(["exec", "-u", "1000", "x1", "/bin/true"])
        XCTAssertEqual(r.code, 0, r.stderr)
        var after = stat()
        XCTAssertEqual(stat("/dev/null", &after), 0)
        XCTAssertEqual(after.st_uid, before.st_uid, "the host's /dev/null was given to uid \(after.st_uid)")
    }

    /// exec writes the process's oom_score_adj (and LSM labels) under /proc inside the running
    /// container: a container that mounted a file system of its own over /proc got the write in
    /// a file of its own, and the process kept the runtime's settings (its label: none). A write
    /// that is not to procfs is refused.
    func testExecWritesOnlyToARealProc() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/sleep", "60"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        let fake = "mount -t tmpfs none /proc && mkdir -p /proc/self && echo 0 > /proc/self/oom_score_adj"
        var r = b.rt(["exec", "--cap", "CAP_SYS_ADMIN", "x1", "/bin/sh", "-c", fake])
        XCTAssertEqual(r.code, 0, r.stderr)
        let process = b.base + "/process.json"
        try #"{"args":["/bin/true"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0},"oomScoreAdj":500}"#
            .write(toFile: process, atomically: true, encoding: .utf8)
        r = b.rt(["exec", "-p", process, "x1"])
        XCTAssertNotEqual(r.code, 0, "oom_score_adj went to the container's own file")
        XCTAssertTrue(r.stderr.contains("/proc/self/oom_score_adj") && r.stderr.contains("/proc is not a proc mount"), r.stderr)
        // A FIFO there (the write's open would wait for a reader for ever, and the shim with it),
        // and a link from the fake /proc into a real procfs mounted elsewhere: refused at once.
        for make in [
            "rm /proc/self/oom_score_adj && mkfifo /proc/self/oom_score_adj",
            "mkdir -p /proc/real && mount -t proc proc /proc/real && rm -rf /proc/self && ln -s real/1 /proc/self"
        ] {
            XCTAssertEqual(b.rt(["exec", "--cap", "CAP_SYS_ADMIN", "x1", "/bin/sh", "-c", make]).code, 0, make)
            let started = Date()
            r = b.rt(["exec", "-p", process, "x1"], timeout: 20)
            XCTAssertNotEqual(r.code, 0, make)
            XCTAssertTrue(r.stderr.contains("/proc is not a proc mount"), "\(make): \(r.stderr)")
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, make)
        }
    }

    /// exec names the container's namespaces as /proc/PID/ns/*, PID the init's: if the init dies
    /// after exec checked it and a host process gets its pid before the namespaces are opened,
    /// exec joined the host's namespaces and ran its command on the host. Once they are open, the
    /// init's start time is checked again (the open fds then keep to what was checked). strace
    /// holds the opens back while the test kills the init and gives its pid to a host `sleep`.
    func testExecDoesNotJoinAProcessThatReusedTheInitsPid() throws {
        try Env.requireRoot()
        try Env.requireStrace("hold exec's opens back")
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/sleep", "600"])
        // The init is orphaned when `run -d` returns: made our child, so that its death frees
        // its pid at once (this host's PID 1 reaps late).
        _ = skiff_prctl(SKIFF_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        let started = b.rt(["run", "-d", "--bundle", b.dir, "x1"])
        _ = skiff_prctl(SKIFF_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        XCTAssertEqual(started.code, 0, started.stderr)
        let state = b.rt(["state", "x1"]).stdout
        let pid = try XCTUnwrap(Int32(state.firstMatch(of: #/"pid": ?([0-9]+)/#)?.1 ?? ""))
        let nsPaths = ["ipc", "uts", "net", "pid", "mnt", "cgroup"].flatMap { ["-P", "/proc/\(pid)/ns/\($0)"] }
        let log = b.base + "/exec.log"
        let exec = Background(
            ["/usr/bin/strace", "-f", "-qq", "-o", "/dev/null"] + nsPaths + ["-e", "inject=openat:delay_enter=1500000:when=1"]
                + [b.runtime, "--root", b.stateRoot, "exec", "x1", "/bin/sh", "-c", "echo ran; readlink /proc/self/ns/mnt"],
            log: log)
        usleep(500_000)  // exec has checked the init and is held at its first open
        kill(pid, SIGKILL)
        XCTAssertEqual(waitpid(pid, nil, 0), pid, "the init is the test's child")
        // The next pid is the init's: a host process takes it.
        var squatterPid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        let last = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(last, 0)
        let text = Array("\(pid - 1)".utf8)
        XCTAssertEqual(write(last, text, text.count), text.count)
        close(last)
        XCTAssertEqual(posix_spawn(&squatterPid, "/bin/sleep", nil, nil, argv, environ), 0)  // one pid, no thread first
        defer { kill(squatterPid, SIGKILL); waitpid(squatterPid, nil, 0) }
        var st: Int32 = 0
        for _ in 0..<600 where waitpid(exec.pid, &st, WNOHANG) == 0 { usleep(10_000) }
        exec.pid = 0
        guard squatterPid == pid else {
            throw XCTSkip("another process took pid \(pid) first (\(squatterPid) got it): the race was not set up")
        }
        let out = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let hostMnt = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")) ?? "?"
        XCTAssertFalse(out.contains(hostMnt), "exec ran in the host's mount namespace: \(out)")
        XCTAssertFalse(out.contains("ran"), "exec ran its command: \(out)")
        XCTAssertTrue(out.contains("init has exited"), out)
    }

    /// (uid_t)-1 as a uid or gid makes setresuid/setresgid leave the id unchanged, so the process
    /// would keep running as root. Every way in refuses ids above 2147483647, as runc does.
    func testOutOfRangeIdsAreRefused() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("id")
        for (field, user) in [
            ("uid", ["uid": 4294967295, "gid": 0]), ("gid", ["uid": 1000, "gid": 4294967295]),
            ("additionalGids", ["uid": 1000, "gid": 1000, "additionalGids": [4294967295]] as [String: Any]),
            ("uid", ["uid": 2147483648, "gid": 0])
        ] {
            b.process["user"] = user
            let r = b.run()
            XCTAssertEqual(r.code, 1, "\(user): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("process.user.\(field)") && r.stderr.contains("out of range"), r.stderr)
            XCTAssertNil(r.values["uid"], "the process ran")
        }
        b.process["user"] = ["uid": 0, "gid": 0]
        b.args(["/bin/sleep", "60"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "x1"]).code, 0)
        for u in ["4294967295", "0:4294967295", "2147483648:0"] {
            let r = b.rt(["exec", "-u", u, "x1", "/bin/skiff-payload", "id"])
            XCTAssertNotEqual(r.code, 0, "exec -u \(u): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("out of range"), r.stderr)
        }
        let process = b.base + "/process.json"
        try #"{"args":["/bin/skiff-payload","id"],"cwd":"/","user":{"uid":4294967295,"gid":4294967295}}"#
            .write(toFile: process, atomically: true, encoding: .utf8)
        let r = b.rt(["exec", "-p", process, "x1"])
        XCTAssertNotEqual(r.code, 0, r.stdout)
        XCTAssertTrue(r.stderr.contains("out of range"), r.stderr)
        // The largest valid id works and really is the process's.
        let ok = b.rt(["exec", "-u", "2147483647:2147483647", "x1", "/bin/skiff-payload", "id"])
        XCTAssertEqual(ok.code, 0, ok.stderr)
        XCTAssertEqual(ok.values["uid"], "2147483647")
        XCTAssertEqual(ok.values["gid"], "2147483647")
    }

    /// A writer in the rootfs swaps a directory on a mount target's path for a symlink out of it
    /// (renameat2 RENAME_EXCHANGE in a loop) while `create` mounts there. Targets are resolved
    /// once, inside the rootfs, and mounted on that descriptor: over 200 creates (half of them
    /// with rshared root propagation, where a misplaced mount would reach the host) no mount
    /// lands on the host and every container has its tmpfs. Before the fix a path resolved in
    /// user space and mounted by name put 13 of 25 outside.
    func testMountTargetSwappedForASymlinkDuringCreateStaysInside() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let root = b.base + "/rootfs", host = b.base + "/host"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, root]).code, 0)
        try FileManager.default.createDirectory(atPath: root + "/vol/a/x", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: host + "/x", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/vol/b", withDestinationPath: host)
        // The host side is a shared mount, as a Bidirectional volume's would be.
        XCTAssertEqual(Cmd.run("/bin/mount", ["--bind", host, host]).code, 0)
        XCTAssertEqual(Cmd.run("/bin/mount", ["--make-shared", host]).code, 0)
        defer { Cmd.run("/bin/umount", ["-R", "-l", host]) }
        b.config["root"] = ["path": root, "readonly": true]
        b.addMount(["destination": "/vol/a/x", "type": "tmpfs", "source": "racetmp", "options": ["size=1234k"]])
        b.args(["/bin/true"])
        let swapper = Background([
            "/usr/bin/python3", "-c",
            """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            a, b = b"\(root)/vol/a", b"\(root)/vol/b"
            while True: libc.renameat2(-100, a, -100, b, 2)
            """
        ])
        defer { swapper.stop(SIGKILL) }
        var created = 0, inside = 0
        var refusals: [String: Int] = [:]
        for i in 0..<200 {
            b.linux["rootfsPropagation"] = i % 2 == 0 ? "rslave" : "rshared"
            let r = b.rt(["create", "--bundle", b.dir, "r\(i)"])
            XCTAssertEqual(Host.mounts(containing: "racetmp").count, 0, "round \(i): a mount reached the host")
            if r.code != 0 { refusals[String(r.stderr.prefix(160)), default: 0] += 1 }
            if r.code == 0 {
                created += 1
                if let pid = (try? JSONSerialization.jsonObject(with: Data(b.rt(["state", "r\(i)"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int,
                    let mi = try? String(contentsOfFile: "/proc/\(pid)/mountinfo", encoding: .utf8), mi.contains("racetmp")
                {
                    inside += 1
                }
                XCTAssertEqual(b.rt(["delete", "--force", "r\(i)"]).code, 0)
            }
        }
        swapper.stop(SIGKILL)
        print("mount race: \(created) of 200 created, refusals: \(refusals)")
        XCTAssertGreaterThan(created, 100, "most creates succeed (a refused one is not an escape): \(refusals)")
        XCTAssertEqual(inside, created, "every created container has its tmpfs inside")
        XCTAssertEqual(Host.mounts(containing: "racetmp"), [])
    }

    /// CVE-2019-16884 / CVE-2019-19921: a rootfs whose /proc (or /sys) is a symlink would get
    /// procfs mounted elsewhere, where masked paths and LSM rules do not look. Refused, like runc.
    func testProcOrSysThroughASymlinkIsRefused() throws {
        try Env.requireRoot()
        for (dir, type) in [("proc", "proc"), ("sys", "sysfs")] {
            let b = try TestBundle()
            defer { b.cleanup() }
            let root = b.base + "/rootfs"
            XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, root]).code, 0)
            try FileManager.default.removeItem(atPath: root + "/" + dir)
            try FileManager.default.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: root + "/" + dir, withDestinationPath: "/elsewhere")
            b.config["root"] = ["path": root, "readonly": true]
            b.payload("echo", "ran")
            let r = b.run()
            XCTAssertEqual(r.code, 1, "\(dir): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("filesystem \"\(type)\" must be mounted on an ordinary directory"), r.stderr)
            XCTAssertFalse(r.stdout.contains("ran"))
        }
    }

    /// An image whose /dev is a symlink to /proc: the /dev tmpfs would land on /proc and cover
    /// it, masked paths and all (they were skipped as missing). Refused as runc's
    /// checkProcMount refuses it; a bind of one of the files lxcfs emulates still works, and a
    /// mount into /proc/sys does not.
    func testMountsThatResolveIntoProcAreRefused() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let root = b.base + "/rootfs"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, root]).code, 0)
        try? FileManager.default.removeItem(atPath: root + "/dev")
        try FileManager.default.createSymbolicLink(atPath: root + "/dev", withDestinationPath: "/proc")
        b.config["root"] = ["path": root, "readonly": false]
        b.payload("echo", "ran")
        var r = b.run()
        XCTAssertNotEqual(r.code, 0, r.stdout)
        XCTAssertTrue(r.stderr.contains("mount \"/dev\": it resolves to /proc, where only a procfs may be mounted"), r.stderr)
        XCTAssertFalse(r.stdout.contains("ran"))
        XCTAssertEqual(b.rt(["list", "-q"]).stdout, "")

        let c = try TestBundle()
        defer { c.cleanup() }
        let file = c.base + "/fake-uptime"
        try "12345.67 0.00\n".write(toFile: file, atomically: true, encoding: .utf8)
        c.addMount(["destination": "/proc/uptime", "type": "bind", "source": file, "options": ["bind", "ro"]])
        c.args(["/bin/cat", "/proc/uptime"])
        r = c.run()
        XCTAssertEqual(r.stdout, "12345.67 0.00\n", r.stderr)
        // /proc/net/dev is on runc's list, but /proc/net is a symlink to self/net and the kernel
        // refuses mounts on a /proc/PID file: runc 1.1.5 says "inside /proc", and so does skiff.
        c.config["mounts"] = (c.config["mounts"] as! [[String: Any]]).filter { $0["destination"] as? String != "/proc/uptime" }
        c.addMount(["destination": "/proc/net/dev", "type": "bind", "source": file, "options": ["bind", "ro"]])
        r = c.run("c-net")
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("mount \"/proc/net/dev\": it is inside /proc"), r.stderr)
        c.config["mounts"] = (c.config["mounts"] as! [[String: Any]]).filter { $0["destination"] as? String != "/proc/net/dev" }
        c.addMount(["destination": "/proc/sys/kernel/core_pattern", "type": "bind", "source": file, "options": ["bind", "ro"]])
        r = c.run("c2")
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("mount \"/proc/sys/kernel/core_pattern\": it is inside /proc"), r.stderr)
    }

    /// A container without a procfs (the spec's minimal config has none): the init used to keep
    /// the host's state directory open for exec.fifo, and a neighbour with CAP_SYS_PTRACE walked
    /// out through /proc/1/fd. Now no fd of the created init is a directory, and start works.
    func testACreatedInitWithoutProcHoldsNoHostDirectory() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.config["mounts"] = (b.config["mounts"] as! [[String: Any]]).filter { $0["destination"] as? String != "/proc" }
        b.linux["maskedPaths"] = []
        b.linux["readonlyPaths"] = []
        b.payload("echo", "ran")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let pid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        XCTAssertFalse(fds.isEmpty)
        for fd in fds {
            var st = stat()
            XCTAssertEqual(stat("/proc/\(pid)/fd/\(fd)", &st), 0)
            XCTAssertNotEqual(
                st.st_mode & S_IFMT, S_IFDIR,
                "fd \(fd) of the created init is a directory: " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? "?")
            )
        }
        XCTAssertEqual(b.rt(["start", "c1"]).code, 0)
        for _ in 0..<100 where b.rt(["state", "c1"]).stdout.contains("\"running\"") { usleep(20_000) }
        XCTAssertTrue(b.rt(["state", "c1"]).stdout.contains("\"stopped\""))
        XCTAssertEqual(b.rt(["delete", "c1"]).code, 0)
    }

    /// --no-pivot keeps the host's root in the mount namespace; a full procfs there would let a
    /// nested user namespace mount a fresh procfs over the masks (the kernel allows a new procfs
    /// only where one is already fully visible). The host's proc and sysfs mounts are detached
    /// first, as runc does: the nested mount fails in skiff and in runc alike.
    func testNoPivotHidesTheHostProcFromNestedUserNamespaces() throws {
        try Env.requireRoot()
        var runtimes = [Env.skiff]
        if let runc = Env.which("runc") { runtimes.append(runc) } else { print("runc not installed: comparison skipped") }
        var results: [String] = []
        for rt in runtimes {
            let b = try TestBundle(runtime: rt)
            defer { b.cleanup() }
            b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs"])
            var caps = (b.process["capabilities"] as? [String: Any]) ?? [:]
            for set in ["bounding", "effective", "permitted"] { caps[set] = ((caps[set] as? [String]) ?? []) + ["CAP_SYS_ADMIN"] }
            b.process["capabilities"] = caps
            b.args([
                "/bin/sh", "-c",
                "mkdir -p /tmp/p; unshare -U -r -m -p -f --mount-proc=/tmp/p true 2>/dev/null && echo nested-proc-mounted || echo nested-proc-refused; grep -c ' proc ' /proc/self/mountinfo"
            ])
            let r = b.rt(["run", "--no-pivot", "--bundle", b.dir, "np1"])
            XCTAssertEqual(r.code, 0, "\(rt): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("nested-proc-refused"), "\(rt): \(r.stdout)")
            results.append(r.stdout)
        }
        if results.count == 2 { XCTAssertEqual(results[0], results[1], "skiff and runc see the same") }
    }

    /// A created container's init waits for `start` holding no directory of the host (only
    /// exec.fifo, see StartBarrier), and is not dumpable while it waits: neither an exec'd process nor a
    /// container sharing its pid namespace can `cd /proc/1/fd/N` into the host. Before, fd 5 was
    /// the state directory and both read its config.json and wrote next to it.
    func testCreatedInitHoldsNoHostDirectory() throws {
        try Env.requireRoot()
        let probe = try EscapeProbe()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/true"])
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let pid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
            var st = stat()
            XCTAssertEqual(stat("/proc/\(pid)/fd/\(fd)", &st), 0)
            XCTAssertNotEqual(
                st.st_mode & S_IFMT, S_IFDIR,
                "fd \(fd) of the created init is a directory: " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? "?")
            )
        }
        let climb = "for f in /proc/1/fd/*; do (cd $f 2>/dev/null && \(probe.script("exec"))); done; echo done"
        let r = b.rt(["exec", "c1", "/bin/sh", "-c", climb])
        XCTAssertEqual(r.stdout.suffix(5), "done\n", r.stderr)
        XCTAssertEqual(probe.leaks(r.stdout), [])
        // A neighbour in the created container's pid namespace, root with the default caps.
        let n = try TestBundle()
        defer { n.cleanup() }
        n.addNamespace("pid", path: "/proc/\(pid)/ns/pid")
        n.args(["/bin/sh", "-c", climb])
        let nr = n.run("n1")
        XCTAssertEqual(probe.leaks(nr.stdout), [], nr.stderr)
    }

    /// A created init is a copy of the runtime until execve: /proc/1/environ and cmdline showed
    /// the runtime's whole environment (tokens, proxies) and its host paths to anyone in the
    /// container allowed to read them. Now blank, and "skiff init" (runc's init is "runc init").
    func testCreatedInitShowsNoRuntimeEnvironment() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/true"])
        try b.write()
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_TEST_SECRET"] = "hunter2"
        XCTAssertEqual(Cmd.run(Env.skiff, ["--root", b.stateRoot, "create", "--bundle", b.dir, "c1"], env: env).code, 0)
        let pid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        let environ = try XCTUnwrap(FileManager.default.contents(atPath: "/proc/\(pid)/environ"))
        XCTAssertFalse(String(decoding: environ, as: UTF8.self).contains("hunter2"))
        XCTAssertTrue(environ.allSatisfy { $0 == 0 }, "no environment text at all")
        let cmdline = try XCTUnwrap(FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"))
        XCTAssertTrue(cmdline.starts(with: Array("skiff\0init\0".utf8)))
        XCTAssertFalse(String(decoding: cmdline, as: UTF8.self).contains(b.dir), "no host path")
    }

    /// Only sysctls of a namespace the container owns (runc's rule): kernel.core_pattern would
    /// run a program of the container's choosing as root on the host at the next crash.
    func testHostGlobalSysctlsAreRefused() throws {
        try Env.requireRoot()
        let before = try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8)
        var runtimes = [Env.skiff]
        if let runc = Env.which("runc") { runtimes.append(runc) }
        for rt in runtimes {
            for (key, value, ok) in [
                ("kernel.core_pattern", "|/tmp/pwn %p", false), ("kernel.printk_ratelimit_burst", "77", false),
                ("net.ipv4.ip_forward", "1", true), ("kernel.shmmni", "4000", true), ("kernel.domainname", "x.test", true)
            ] {
                let b = try TestBundle(runtime: rt)
                defer { b.cleanup() }
                b.linux["sysctl"] = [key: value]
                b.args(["/bin/true"])
                let r = b.run()
                XCTAssertEqual(r.code == 0, ok, "\(rt) \(key): \(r.stderr)")
            }
            let b = try TestBundle(runtime: rt)
            defer { b.cleanup() }
            b.linux["namespaces"] = (b.linux["namespaces"] as! [[String: Any]]).filter { $0["type"] as? String != "network" }
            b.linux["sysctl"] = ["net.ipv4.ip_forward": "1"]
            XCTAssertNotEqual(b.run().code, 0, "\(rt): a net sysctl in the host's network namespace")
        }
        XCTAssertEqual(try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8), before)
    }

    /// A namespace joined by path that is the host's own is still the host's: a sysctl there
    /// would change the host (net: runc refuses it too; ipc and uts: runc writes them, skiff
    /// refuses). A joined namespace of another's takes the sysctl.
    func testSysctlsInAJoinedHostNamespaceAreRefused() throws {
        try Env.requireRoot()
        let cases = [
            ("network", "net", "net.ipv4.tcp_keepalive_probes", "3", "/proc/sys/net/ipv4/tcp_keepalive_probes"),
            ("ipc", "ipc", "kernel.msgmax", "8193", "/proc/sys/kernel/msgmax"),
            ("uts", "uts", "kernel.domainname", "pwn.test", "/proc/sys/kernel/domainname")
        ]
        for (type, proc, key, value, file) in cases {
            let before = try String(contentsOfFile: file, encoding: .utf8)
            XCTAssertNotEqual(before.trimmingCharacters(in: .whitespacesAndNewlines), value, "pick a value the host does not have")
            // A runtime that lets it through changed the host: put it back whatever happens.
            defer { if (try? String(contentsOfFile: file, encoding: .utf8)) != before { try? before.write(toFile: file, atomically: false, encoding: .utf8) } }
            let b = try TestBundle()
            defer { b.cleanup() }
            b.addNamespace(type, path: "/proc/\(getpid())/ns/" + proc)  // the test's own: the host's
            b.linux["sysctl"] = [key: value]
            b.args(["/bin/true"])
            let r = b.run()
            XCTAssertNotEqual(r.code, 0, key)
            XCTAssertTrue(r.stderr.contains("sysctl \"\(key)\" not allowed in the host's \(type) namespace"), r.stderr)
            XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), before, "the host's \(key) is unchanged")
            XCTAssertEqual(b.rt(["list", "-q"]).stdout, "", "nothing left behind")
        }
        guard let ip = Env.which("ip") else { throw XCTSkip("no ip(8) to make a named network namespace") }
        let name = "skiff-sysctl-" + UUID().uuidString.prefix(8).lowercased()
        XCTAssertEqual(Cmd.run(ip, ["netns", "add", name]).code, 0)
        defer { Cmd.run(ip, ["netns", "del", name]) }
        let b = try TestBundle()
        defer { b.cleanup() }
        b.addNamespace("network", path: "/run/netns/" + name)
        b.linux["sysctl"] = ["net.ipv4.tcp_keepalive_probes": "3"]
        b.args(["/bin/true"])
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(Cmd.run(ip, ["netns", "exec", name, "cat", "/proc/sys/net/ipv4/tcp_keepalive_probes"]).stdout, "3\n")
    }

    /// A cgroupsPath naming a cgroup that already holds someone else's processes: a create that
    /// fails there leaves them (and the cgroup) alone. Before, the cleanup killed them all.
    func testFailedCreateLeavesAnExistingCgroupAlone() throws {
        try Env.requireRoot()
        guard let cg = Host.cgroupRoot else { throw XCTSkip("no cgroup2 hierarchy") }
        let victim = try TestBundle()
        defer { victim.cleanup() }
        victim.args(["/bin/sleep", "60"])
        XCTAssertEqual(victim.rt(["run", "-d", "--bundle", victim.dir, "v1"]).code, 0)
        let b = try TestBundle()
        defer { b.cleanup() }
        b.linux["cgroupsPath"] = victim.linux["cgroupsPath"]
        b.cgroupOwnedElsewhere = true
        b.args(["/nonexistent-binary"])
        let r = b.run()
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("cgroup is not empty"), "runc's warning: \(r.stderr)")
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(victim.rt(["state", "v1"]).stdout.utf8)) as? [String: Any] == nil, false)
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: Data(victim.rt(["state", "v1"]).stdout.utf8)) as? [String: Any])?["status"] as? String,
            "running", "the other container's process was killed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cg + (victim.linux["cgroupsPath"] as! String)))
    }

    /// Masked and read-only paths in a volume another writer swaps for a symlink during create:
    /// the protection never lands elsewhere with the path left open. Each create either masks
    /// the secret (and makes the directory read-only) or fails.
    func testMaskedPathSwappedForASymlinkIsNeverLeftOpen() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let root = b.base + "/rootfs", vol = b.base + "/vol"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, root]).code, 0)
        try FileManager.default.createDirectory(atPath: vol + "/v/rosub", withIntermediateDirectories: true)
        try "VOLUME-SECRET".write(toFile: vol + "/v/secret", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: vol + "/other", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: vol + "/lnk", withDestinationPath: "/vol/other")
        b.config["root"] = ["path": root, "readonly": true]
        b.addMount(["destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rw"]])
        b.linux["maskedPaths"] = ["/vol/v/secret"]
        b.linux["readonlyPaths"] = ["/vol/v/rosub"]
        b.args(["/bin/sh", "-c", "cat /vol/v/secret 2>/dev/null; touch /vol/v/rosub/w 2>/dev/null && echo WRITABLE; true"])
        let swapper = Background([
            "/usr/bin/python3", "-c",
            """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            a, b = b"\(vol)/v", b"\(vol)/lnk"
            while True: libc.renameat2(-100, a, -100, b, 2)
            """
        ])
        defer { swapper.stop(SIGKILL) }
        var ran = 0
        for i in 0..<100 {
            let r = b.run("m\(i)")
            if r.code == 0 { ran += 1 }
            XCTAssertFalse(r.stdout.contains("VOLUME-SECRET"), "round \(i): the masked secret was readable")
            XCTAssertFalse(r.stdout.contains("WRITABLE"), "round \(i): the read-only path was writable")
        }
        swapper.stop(SIGKILL)
        XCTAssertGreaterThan(ran, 0, "some creates go through")
    }

    /// A state root another user can replace is refused before anything is written: a root they
    /// own, a directory of theirs above it, or a symlink (whose target would be chmodded and
    /// filled). Before, root ran a `poststop` hook from a state.json that `nobody` had written.
    func testAStateRootAnotherUserControlsIsRefused() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("exit", "0")
        try b.write()
        let fm = FileManager.default
        let theirs = b.base + "/theirs", victim = b.base + "/victim"
        try fm.createDirectory(atPath: theirs, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        try fm.createDirectory(atPath: theirs + "/state", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(atPath: victim, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        XCTAssertEqual(chown(theirs, 65534, 65534), 0)
        try fm.createSymbolicLink(atPath: b.base + "/link", withDestinationPath: victim)
        try fm.createDirectory(atPath: b.base + "/owned", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        XCTAssertEqual(chown(b.base + "/owned", 65534, 65534), 0)
        for (root, why) in [
            (theirs + "/state", "belongs to uid 65534"), (theirs + "/new", "belongs to uid 65534"),
            (b.base + "/link", "symlink"), (b.base + "/owned", "belongs to uid 65534")
        ] {
            let r = Cmd.run(Env.skiff, ["--root", root, "run", "-d", "--bundle", b.dir, "s1"])
            XCTAssertNotEqual(r.code, 0, root)
            XCTAssertTrue(r.stderr.contains(why), "\(root): \(r.stderr)")
            XCTAssertFalse(fm.fileExists(atPath: root + "/s1"), "nothing made in \(root)")
        }
        XCTAssertFalse(fm.fileExists(atPath: theirs + "/new"))
        XCTAssertEqual((try fm.attributesOfItem(atPath: victim)[.posixPermissions] as? Int), 0o755, "the symlink's target is untouched")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: victim), [])

        // Only create checked the root: every other command read records from it, and delete
        // ran a planted record's poststop hook as root. A real record, renamed and given a hook,
        // in the root `nobody` controls, reached directly and through a symlink of ours.
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "real"]).code, 0)
        let record = try String(contentsOfFile: b.stateRoot + "/real/state.json", encoding: .utf8)
        XCTAssertEqual(b.rt(["delete", "--force", "real"]).code, 0)
        let marker = b.base + "/hook-ran"
        let planted = record.replacingOccurrences(of: #""id":"real""#, with: #""id":"foo""#)
            .replacingOccurrences(of: #""poststop":"#, with: #""ignored":"#)
            .replacingOccurrences(
                of: "{", with: #"{"poststop":[{"path":"/bin/sh","args":["sh","-c","id > \#(marker)"]}],"#, options: [],
                range: record.startIndex..<record.index(after: record.startIndex))
        try fm.createDirectory(atPath: theirs + "/state/foo", withIntermediateDirectories: false)
        try planted.write(toFile: theirs + "/state/foo/state.json", atomically: false, encoding: .utf8)
        XCTAssertEqual(chown(theirs + "/state/foo", 65534, 65534), 0)
        XCTAssertEqual(chown(theirs + "/state/foo/state.json", 65534, 65534), 0)
        try fm.createSymbolicLink(atPath: b.base + "/theirlink", withDestinationPath: theirs + "/state")
        for root in [theirs + "/state", b.base + "/theirlink"] {
            for args in [["delete", "foo"], ["delete", "--force", "foo"], ["state", "foo"], ["kill", "foo", "KILL"], ["list"], ["ps", "foo"]] {
                let r = Cmd.run(Env.skiff, ["--root", root] + args)
                XCTAssertNotEqual(r.code, 0, "\(root) \(args)")
                XCTAssertTrue(r.stderr.contains("belongs to uid 65534") || r.stderr.contains("symlink"), "\(root) \(args): \(r.stderr)")
            }
        }
        XCTAssertFalse(fm.fileExists(atPath: marker), "a hook from another user's record ran as root")
        // A symlink on the way that another user owns, in a sticky directory (as /tmp): theirs to
        // repoint at any time, though it leads to a root of ours today. realpath followed it.
        let sticky = b.base + "/sticky"
        try fm.createDirectory(atPath: sticky, withIntermediateDirectories: false)
        try fm.createDirectory(atPath: b.base + "/ours/state", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        XCTAssertEqual(chmod(sticky, 0o1777), 0)
        try fm.createSymbolicLink(atPath: sticky + "/link", withDestinationPath: b.base + "/ours")
        XCTAssertEqual(lchown(sticky + "/link", 65534, 65534), 0)
        for args in [["list"], ["run", "-d", "--bundle", b.dir, "s2"]] {
            let r = Cmd.run(Env.skiff, ["--root", sticky + "/link/state"] + args)
            XCTAssertNotEqual(r.code, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains("link belongs to uid 65534"), "\(args): \(r.stderr)")
        }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: b.base + "/ours/state"), [])
        XCTAssertTrue(fm.fileExists(atPath: theirs + "/state/foo/state.json"), "their record is left alone")
    }

    /// A state.json whose id is not its directory's is refused: delete removes `<root>/<id>`, and
    /// an id of "../victim" removed a directory outside the root.
    func testAStateFileNamingAnotherPathIsNotFollowed() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let victim = b.base + "/victim"
        try FileManager.default.createDirectory(atPath: victim + "/keep", withIntermediateDirectories: true)
        let file = b.stateRoot + "/c1/state.json"
        let original = try String(contentsOfFile: file, encoding: .utf8)
        try original.replacingOccurrences(of: #""id":"c1""#, with: #""id":"../victim""#).write(toFile: file, atomically: true, encoding: .utf8)
        let r = b.rt(["delete", "--force", "c1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("names another container"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: victim + "/keep"), "the directory the record named is still there")
        try original.write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
    }

    /// delete empties and removes the recorded cgroup and the directories above it up to the
    /// one create made, by path: a record naming a host tree instead (directly, through `..`,
    /// through a symlink another process could swap, or as the created top) is not acted on.
    /// delete still stops the init and removes the state, warns, and leaves every cgroup alone.
    func testAStateFileNamingAnotherCgroupIsNotFollowed() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "30")
        let victim = b.base + "/victim"
        try FileManager.default.createDirectory(atPath: victim + "/keep/deeper", withIntermediateDirectories: true)
        // delete kills what a cgroup's cgroup.procs lists when it has no cgroup.kill.
        let bystander = Process()
        bystander.executableURL = URL(fileURLWithPath: "/bin/sleep")
        bystander.arguments = ["60"]
        try bystander.run()
        defer { bystander.terminate() }
        try "\(bystander.processIdentifier)\n".write(toFile: victim + "/keep/cgroup.procs", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: b.base + "/link", withDestinationPath: victim + "/keep")
        let base = try XCTUnwrap(b.linux["cgroupsPath"] as? String)
        var cases: [(String, String?)] = [
            (victim + "/keep", victim), (victim + "/keep/../keep", nil), (b.base + "/link", nil), ("/etc/passwd", nil)
        ]
        // The hierarchy's root, which holds every process not in a cgroup of its own; and, on a
        // hybrid host, a path in a v1 hierarchy that does not exist yet (another root process
        // could make it, and put anyone in it, while delete waits for the init to die).
        let mountpoint = try XCTUnwrap(Host.cgroupRoot)
        cases.append((mountpoint, nil))
        if mountpoint != "/sys/fs/cgroup" { cases.append(("/sys/fs/cgroup/pids/skiff-test-absent", nil)) }
        for (i, (path, top)) in cases.enumerated() {
            b.linux["cgroupsPath"] = base + "-\(i)"
            XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c\(i)"]).code, 0)
            let file = b.stateRoot + "/c\(i)/state.json"
            var record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
            let cgroup = try XCTUnwrap(record["cgroupPath"] as? String)
            let pid = try XCTUnwrap(record["pid"] as? Int)
            record["cgroupPath"] = path
            record["cgroupCreatedTop"] = top ?? path
            let original = try Data(contentsOf: URL(fileURLWithPath: file))
            try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: file))
            if path == mountpoint {
                // Only read here: a build that trusts this record lists the host's processes, and
                // its delete would kill them all. Then the record is put back and deleted.
                let ps = b.rt(["ps", "--format", "json", "c\(i)"])
                XCTAssertTrue(ps.stderr.contains("the state file was altered; its cgroup is ignored"), "\(path): \(ps.stderr)")
                XCTAssertFalse(ps.stdout.contains("\(bystander.processIdentifier)"), "\(path): ps listed a process outside the container")
                try original.write(to: URL(fileURLWithPath: file))
                XCTAssertEqual(b.rt(["delete", "--force", "c\(i)"]).code, 0)
                continue
            }
            let r = b.rt(["delete", "--force", "c\(i)"])
            XCTAssertEqual(r.code, 0, "\(path): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("the state file was altered; its cgroup is ignored"), r.stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: victim + "/keep/deeper"), "\(path): the tree the record named is still there")
            XCTAssertTrue(bystander.isRunning, "\(path): the process the fake cgroup.procs listed is alive")
            XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c\(i)"), "\(path): the state is removed")
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            XCTAssertTrue(stat.isEmpty || stat.contains(") Z "), "\(path): the init is stopped: \(stat)")
            // The container's own cgroup was not named by the record: delete left it, empty.
            XCTAssertEqual(rmdir(cgroup), 0, "\(cgroup): \(String(cString: strerror(errno)))")
        }
        b.linux["cgroupsPath"] = base
    }

    /// The cgroup2 root bound onto a directory below itself looks like any cgroup by path and
    /// device; a record naming that directory must not make `kill --all` or delete signal every
    /// process the root's cgroup.procs lists. Probed with signal 0, which a build that trusts
    /// the path sends harmlessly to all of them, inside a private mount namespace.
    func testABindOfTheHierarchyRootIsNeverSignalled() throws {
        try Env.requireRoot()
        let mountpoint = try XCTUnwrap(Host.cgroupRoot)
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let file = b.stateRoot + "/c1/state.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: file))
        var record = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
        let bind = mountpoint + "/skiff-test-bind-" + UUID().uuidString.prefix(8).lowercased()
        record["cgroupPath"] = bind
        record["cgroupCreatedTop"] = nil
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(mkdir(bind, 0o755), 0, String(cString: strerror(errno)))
        defer { rmdir(bind) }
        let r = Cmd.sh(
            "unshare -m --propagation private /bin/sh -ec 'mount --bind \(mountpoint) \(bind); "
                + "\(Env.skiff) --root \(b.stateRoot) kill --all c1 0; echo rc=$?' 2>&1")
        XCTAssertTrue(r.stdout.contains("the root of a cgroup hierarchy"), r.stdout + r.stderr)
        XCTAssertFalse(r.stdout.contains("rc=0"), r.stdout)
        try original.write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
    }

    /// linux.devices numbers beyond 32 bits are refused: mknod would make 2^32+1 a 1:1 node
    /// (/dev/mem) in the container.
    func testADeviceNumberBeyond32BitsIsRefused() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("exit", "0")
        b.linux["devices"] = [["path": "/dev/x", "type": "c", "major": 4_294_967_297, "minor": 1]]
        let r = b.run()
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("major 4294967297 is not a device number"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
    }
}

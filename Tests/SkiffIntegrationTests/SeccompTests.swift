import Foundation
import XCTest
import Glibc
import SkiffSys

final class SeccompTests: XCTestCase {
    var b: TestBundle!

    override func setUpWithError() throws {
        try Env.requireRoot()
        b = try TestBundle()
        b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs"])
    }

    override func tearDown() { b?.cleanup() }

    func profile(_ rules: [[String: Any]], defaultAction: String = "SCMP_ACT_ALLOW", extra: [String: Any] = [:]) {
        var s: [String: Any] = ["defaultAction": defaultAction, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules]
        for (k, v) in extra { s[k] = v }
        b.linux["seccomp"] = s
    }

    func testBlockedSyscallGetsTheConfiguredErrno() {
        for nnp in [true, false] {
            profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38]])
            b.process["noNewPrivileges"] = nnp
            b.args(["/bin/sh", "-c", "mkdir /tmp/x 2>&1; /bin/skiff-payload seccomp"])
            let r = b.run("c\(nnp)")
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("Function not implemented"), "nnp=\(nnp): \(r.stdout)")
            XCTAssertEqual(r.values["seccomp"], "2", "filter mode")
        }
    }

    func testKillActionKills() {
        profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"]])
        b.args(["/bin/mkdir", "/tmp/x"])
        XCTAssertEqual(b.run().code, 128 + 31, "killed by SIGSYS")
    }

    func testTrapLogAndTraceActions() {
        profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRAP"]])
        b.args(["/bin/mkdir", "/tmp/x"])
        XCTAssertEqual(b.run("trap").code, 128 + 31, "SIGSYS from the trap")
        profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"]])
        b.args(["/bin/sh", "-c", "mkdir /tmp/x && echo made"])
        XCTAssertEqual(b.run("log").stdout, "made\n", "LOG allows the call")
        // TRACE without a tracer attached: the kernel fails the call with ENOSYS.
        profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 1]])
        b.args(["/bin/sh", "-c", "mkdir /tmp/x 2>&1"])
        XCTAssertTrue(b.run("trace").stdout.contains("Function not implemented"))
    }

    func testArgumentConditions() {
        // write(2, ...) fails with EBADF-like errno 9; write(1, ...) passes.
        profile([
            [
                "names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                "args": [["index": 0, "value": 2, "op": "SCMP_CMP_EQ"]]
            ],
            [
                "names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [["index": 2, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"]]
            ]
        ])
        b.payload("stderr", "hidden", "echo", "visible")
        let r = b.run()
        XCTAssertEqual(r.code, 0)
        XCTAssertEqual(r.stdout, "visible\n")
        XCTAssertEqual(r.stderr, "")
    }

    func testDefaultErrnoProfileWithAllowList() {
        // A deny-by-default profile: only what the payload and the runtime's last steps need.
        let allow = [
            "read", "write", "exit", "exit_group", "execve", "brk", "mmap", "munmap", "arch_prctl", "set_tid_address",
            "set_robust_list", "rseq", "prlimit64", "mprotect", "uname", "readlink", "getrandom", "close", "close_range",
            "fstat", "newfstatat", "ioctl", "rt_sigaction", "rt_sigprocmask", "getpid", "getppid", "openat", "futex"
        ]
        profile([["names": allow, "action": "SCMP_ACT_ALLOW"]], defaultAction: "SCMP_ACT_ERRNO")
        b.process["noNewPrivileges"] = true
        b.payload("pid", "hostname", "write", "/tmp/nope")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["pid"], "1")
    }

    func testNotifyListenerReceivesFdAndState() throws {
        let sock = b.base + "/agent.sock"
        let lfd = try Sys.listenUnix(sock, backlog: 4)
        defer { close(lfd) }
        profile(
            [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"]],
            extra: ["listenerPath": sock, "listenerMetadata": "meta-1"])
        b.process["noNewPrivileges"] = true
        b.args(["/bin/sh", "-c", "mkdir /tmp/x; echo mkdir-returned; sleep 30"])
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0)
        var p = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        // An accept without a connection would hang the whole suite: fail instead.
        guard poll(&p, 1, 5000) == 1 else { return XCTFail("the runtime never connected to the agent socket") }
        let conn = accept(lfd, nil, nil)
        defer { close(conn) }
        let (fd, payload) = try Sys.recvFd(conn)
        let obj = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as! [String: Any]
        XCTAssertEqual(obj["fds"] as? [String], ["seccompFd"])
        XCTAssertEqual(obj["metadata"] as? String, "meta-1")
        XCTAssertEqual((obj["state"] as? [String: Any])?["id"] as? String, "c1")
        // The pid as the runtime (and the agent) sees it, not the container's pid 1.
        let initPid = (try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int
        XCTAssertEqual(obj["pid"] as? Int, initPid)
        // The notification is pending on the fd.
        var np = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&np, 1, 5000), 1, "the blocked mkdir is waiting for the agent")
        close(fd)  // no agent: the kernel fails the syscall and the container goes on

        // An exec'd process gets the same filter, SCMP_ACT_NOTIFY included, and its notify fd
        // reaches the agent too (before, its mkdir was never seen by the agent).
        let execLog = b.base + "/exec.log"
        let exec = Background([Env.skiff, "--root", b.stateRoot, "exec", "c1", "/bin/sh", "-c", "mkdir /tmp/e; echo done"], log: execLog)
        defer { exec.stop(SIGKILL) }
        var p2 = pollfd(fd: lfd, events: Int16(POLLIN), revents: 0)
        guard poll(&p2, 1, 5000) == 1 else {
            let out = (try? String(contentsOfFile: execLog, encoding: .utf8)) ?? ""
            XCTFail("the exec's notify fd is not handed to the agent; exec said: \(out); state: \(b.rt(["state", "c1"]).stdout)")
            _ = b.rt(["delete", "--force", "c1"])
            return
        }
        let conn2 = accept(lfd, nil, nil)
        defer { close(conn2) }
        let (fd2, payload2) = try Sys.recvFd(conn2)
        let obj2 = try JSONSerialization.jsonObject(with: Data(payload2.utf8)) as! [String: Any]
        XCTAssertEqual((obj2["state"] as? [String: Any])?["id"] as? String, "c1")
        XCTAssertNotEqual(obj2["pid"] as? Int, initPid, "the exec'd process's own pid")
        var np2 = pollfd(fd: fd2, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&np2, 1, 5000), 1, "the exec'd mkdir waits for the agent")
        close(fd2)
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
    }

    /// An agent that takes the notify fd and never answers: the runtime's own syscalls under the
    /// filter (close before the init reports ready; the execve that `start` waits to see done)
    /// wait on it. create and start end with an error naming the syscall once the init has
    /// waited SKIFF_SECCOMP_AGENT_TIMEOUT, instead of hanging (in the shim, which runs the
    /// runtime on its one thread, every container it serves would have hung with them).
    func testAnAgentThatNeverAnswersFailsCreateAndStartInTime() throws {
        let sock = b.base + "/agent.sock"
        let agent = Background([
            "/usr/bin/python3", "-c",
            """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
            held = []
            while True:
                c, _ = s.accept(); held.append((c, socket.recv_fds(c, 65536, 4)))
            """, sock
        ])
        defer { agent.stop(SIGKILL) }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(20_000) }
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_SECCOMP_AGENT_TIMEOUT"] = "2"
        for (name, nr, verb) in [("close", 3, "create"), ("execve", 59, "start")] {
            profile([["names": [name], "action": "SCMP_ACT_NOTIFY"]], extra: ["listenerPath": sock])
            b.process["noNewPrivileges"] = true
            b.payload("exit", "0")
            try b.write()
            let id = "c-" + name
            let t0 = Date()
            var r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "create", "--bundle", b.dir, id], timeout: 60, env: env)
            if verb == "start" {
                XCTAssertEqual(r.code, 0, r.stderr)
                r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "start", id], timeout: 60, env: env)
            }
            XCTAssertNotEqual(r.code, 0, name)
            XCTAssertLessThan(Date().timeIntervalSince(t0), 30, name)
            XCTAssertTrue(r.stderr.contains("\(verb) \"\(id)\"") && r.stderr.contains("for the seccomp agent to answer syscall \(nr)"), r.stderr)
            Cmd.run(Env.skiff, ["--root", b.stateRoot, "delete", "--force", id])
            XCTAssertEqual(b.rt(["list", "-q"]).stdout, "")
        }
    }

    /// The same for `skiff exec`: an agent that lets the init through (it answers its first
    /// connection with SECCOMP_USER_NOTIF_FLAG_CONTINUE) but never answers the exec'd process's
    /// execve. exec used to wait for it without end.
    func testAnAgentThatNeverAnswersFailsExecInTime() throws {
        let sock = b.base + "/agent.sock"
        let agent = Background([
            "/usr/bin/python3", "-c",
            """
            import fcntl, socket, struct, sys, threading
            RECV, SEND = 0xc0502100, 0xc0182101  # SECCOMP_IOCTL_NOTIF_RECV / _SEND
            def answer(fd):
                while True:
                    buf = bytearray(80)
                    fcntl.ioctl(fd, RECV, buf, True)
                    fcntl.ioctl(fd, SEND, bytearray(struct.pack("QqiI", struct.unpack_from("Q", buf)[0], 0, 0, 1)), True)
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
            held = []
            while True:
                c, _ = s.accept(); _, fds, _, _ = socket.recv_fds(c, 65536, 4); held.append((c, fds))
                if len(held) == 1: threading.Thread(target=answer, args=(fds[0],), daemon=True).start()
            """, sock
        ])
        defer { agent.stop(SIGKILL) }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(20_000) }
        profile([["names": ["execve"], "action": "SCMP_ACT_NOTIFY"]], extra: ["listenerPath": sock])
        b.process["noNewPrivileges"] = true
        b.args(["/bin/sleep", "3047"])
        try b.write()
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0, "the agent lets the init's execve through")
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_SECCOMP_AGENT_TIMEOUT"] = "2"
        let t0 = Date()
        let r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "exec", "c1", "/bin/true"], timeout: 60, env: env)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30)
        XCTAssertTrue(r.stderr.contains("exec \"c1\"") && r.stderr.contains("for the seccomp agent to answer syscall 59"), r.stderr)
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
        XCTAssertEqual(b.rt(["list", "-q"]).stdout, "")
    }

    /// runc's rules for SCMP_ACT_NOTIFY: an agent must be named, `write` (which the runtime
    /// still uses under the filter) cannot be trapped, and it is no default action.
    func testNotifyWithoutListenerOrOnWriteIsRefused() {
        for (rules, extra, expect) in [
            ([["names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"]], [String: Any](), "needs a listenerPath"),
            ([["names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"]], ["listenerPath": ""], "needs a listenerPath"),
            ([["names": ["write", "mkdir"], "action": "SCMP_ACT_NOTIFY"]], ["listenerPath": "/tmp/x.sock"], "cannot be used for the write syscall")
        ] as [([[String: Any]], [String: Any], String)] {
            profile(rules, extra: extra)
            b.payload("exit", "0")
            let r = b.rt(["create", "--bundle", b.dir, "c1"])
            XCTAssertEqual(r.code, 1)
            XCTAssertTrue(r.stderr.contains(expect), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
        }
        profile([], defaultAction: "SCMP_ACT_NOTIFY", extra: ["listenerPath": "/tmp/x.sock"])
        XCTAssertTrue(b.rt(["create", "--bundle", b.dir, "c1"]).stderr.contains("cannot be the default action"))
    }

    /// Two conditions on one argument: libseccomp refuses them in one rule, runc adds each as a
    /// rule of its own (ORed). personality(0xffffffff) and personality(8) both fail; 0 works.
    func testTwoConditionsOnOneArgumentAreORed() {
        profile([
            [
                "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [["index": 0, "value": 8, "op": "SCMP_CMP_EQ"], ["index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"]]
            ]
        ])
        b.args(["/bin/sh", "-c", "linux64 true && echo zero-ok; linux32 true 2>/dev/null || echo eight-denied"])
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "zero-ok\neight-denied\n")
    }

    func testInvalidProfileFailsCreateCleanly() {
        profile([["names": ["mkdir"], "action": "SCMP_ACT_BOGUS"]])
        b.payload("exit", "0")
        let r = b.rt(["create", "--bundle", b.dir, "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("seccomp: unknown action \"SCMP_ACT_BOGUS\""), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
        profile([["names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [["index": 0, "value": 1, "op": "SCMP_CMP_WHAT"]]]])
        XCTAssertTrue(b.rt(["create", "--bundle", b.dir, "c1"]).stderr.contains("unknown operator"))
    }

    func testExecGetsTheContainersFilter() {
        profile([["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38]])
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0)
        let r = b.rt(["exec", "c1", "/bin/sh", "-c", "mkdir /tmp/y 2>&1"])
        XCTAssertTrue(r.stdout.contains("Function not implemented"), r.stdout + r.stderr)
    }
}

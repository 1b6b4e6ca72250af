import Foundation
import XCTest

/// containerd-shim-skiff-v2 under a real containerd 1.6 from Debian (`ctr run --runtime <path>`),
/// in a namespace of the test's own (the shim keeps runtime state per namespace).
final class ShimContainerdTests: ImageTestCase {
    var ns = ""
    var containerd: PrivateContainerd!

    override func setUpWithError() throws {
        try super.setUpWithError()
        ns = "skiff-" + UUID().uuidString.prefix(8).lowercased()
        // The shim's directory on containerd's PATH: `--runtime io.containerd.skiff.v2` finds it by name.
        containerd = try PrivateContainerd(work: work, extraPath: (Env.shim as NSString).deletingLastPathComponent)
        let r = ctr(["image", "import", image])
        XCTAssertEqual(r.code, 0, r.stderr)
    }

    override func tearDown() {
        containerd?.stop()
        super.tearDown()
        Host.removeContainerdLeftovers(namespace: ns)
    }

    @discardableResult
    func ctr(_ args: [String], timeout: TimeInterval = 60) -> CmdResult { containerd.ctr(["-n", ns] + args, timeout: timeout) }

    func waitFor(_ what: String, in args: [String], tries: Int = 100) -> Bool {
        for _ in 0..<tries {
            if ctr(args).stdout.contains(what) { return true }
            usleep(50_000)
        }
        return false
    }

    func testRunExecPauseMetricsTTYAndLogs() throws {
        var r = ctr(["run", "--runtime", "io.containerd.skiff.v2", "--rm", ref, "r1", "/bin/skiff-payload", "echo", "hello-shim", "exit", "3"])
        XCTAssertEqual(r.code, 3, r.stderr)
        XCTAssertTrue(r.stdout.contains("hello-shim"), r.stdout)

        containerd.checkDetachedTask(["-n", ns], runtime: ["--runtime", Env.shim], image: ref, metrics: true)

        // A terminal: `script` gives ctr one; the shim makes the pty and copies it.
        if let script = Env.which("script") {
            let cmd = [
                containerd.ctrBinary, "--address", containerd.sock, "-n", ns, "run", "-t", "--rm", "--runtime", Env.shim, ref, "t1",
                "/bin/skiff-payload", "tty", "exit", "6"
            ].joined(separator: " ")
            r = Cmd.run(script, ["-qec", cmd, "/dev/null"], timeout: 60)
            XCTAssertEqual(r.code, 6, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("isatty=1"), r.stdout)
        }

        // file:// log: both streams appended to the file, the exit code still reported.
        let log = work + "/logs/l1.log"
        r = ctr([
            "run", "--rm", "--runtime", Env.shim, "--log-uri", "file://" + log, ref, "l1",
            "/bin/sh", "-c", "echo out-line; echo err-line >&2; exit 2"
        ])
        XCTAssertEqual(r.code, 2, r.stderr)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(text.contains("out-line") && text.contains("err-line"), text)

        // binary:// logger: fd 3 and 4 are the container's stdout and stderr; fd 5 says ready.
        let logger = work + "/logger.sh"
        try "#!/bin/sh\nexec 5>&-\ncat <&3 >> \"$2.out\" & cat <&4 >> \"$2.err\"; wait\n".write(toFile: logger, atomically: true, encoding: .utf8)
        chmod(logger, 0o755)
        r = ctr([
            "run", "--rm", "--runtime", Env.shim, "--log-uri", "binary://\(logger)?file=\(work!)/blog", ref, "b1",
            "/bin/sh", "-c", "echo bin-out; echo bin-err >&2"
        ])
        XCTAssertEqual(r.code, 0, r.stderr)
        var got = ""
        for _ in 0..<100 {
            got =
                ((try? String(contentsOfFile: work + "/blog.out", encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: work + "/blog.err", encoding: .utf8)) ?? "")
            if got.contains("bin-out") && got.contains("bin-err") { break }
            usleep(20_000)
        }
        XCTAssertTrue(got.contains("bin-out") && got.contains("bin-err"), got)
    }

    func testContainerdCrashAndShimCrash() throws {
        // containerd dies while a task runs; after a restart the task is there, killable, and its
        // exit code is reported.
        var r = ctr(["run", "-d", "--runtime", Env.shim, ref, "r1", "/bin/sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"])
        XCTAssertEqual(r.code, 0, r.stderr)
        containerd.crash()
        try containerd.start()
        XCTAssertTrue(waitFor("RUNNING", in: ["task", "ls"]), ctr(["task", "ls"]).stdout)
        XCTAssertEqual(ctr(["task", "kill", "r1"]).code, 0)
        XCTAssertTrue(waitFor("STOPPED", in: ["task", "ls"]))
        r = ctr(["task", "delete", "r1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("42"), "exit code 42 reported: \(r.stderr)")
        XCTAssertEqual(ctr(["container", "delete", "r1"]).code, 0)

        // The shim dies (kill -9) under a foreground `ctr run`: ctr returns instead of hanging,
        // and the container does not outlive the cleanup.
        let done = DispatchSemaphore(value: 0)
        let fg = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        fg.initialize(to: -1)
        defer { fg.deallocate() }
        let args = ["-n", ns, "run", "--rm", "--runtime", Env.shim, ref, "k1", "/bin/sleep", "3019"]
        let c = containerd!
        Thread {
            fg.pointee = c.ctr(args, timeout: 60).code
            done.signal()
        }.start()
        // The daemon, once the task runs: not the short-lived `... start` that launches it.
        XCTAssertTrue(waitFor("RUNNING", in: ["task", "ls"]))
        let shim = Host.processes(mentioning: "-id k1").first { pid in
            let cmd = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0")
            return cmd.first?.hasSuffix("containerd-shim-skiff-v2") == true && cmd.last != "start"
        }
        guard let shimPid = shim else { return XCTFail("no shim for k1") }
        kill(shimPid, SIGKILL)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "ctr run returned after the shim died")
        XCTAssertNotEqual(fg.pointee, 0)
        for _ in 0..<100 where !Host.processes(mentioning: "sleep 3019").isEmpty { usleep(50_000) }
        XCTAssertTrue(Host.processes(mentioning: "sleep 3019").isEmpty, "container process cleaned up")
        XCTAssertEqual(ctr(["task", "ls", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "")
    }

    /// A container without a pid namespace of its own (a pod sharing its pid namespace, as
    /// shareProcessNamespace does) whose init leaves a background child holding stdout: stopping
    /// it is as quick as with the runc shim, and the child goes with it (it used to live until
    /// the pod was removed, its cgroup leaked). The same through `skiff` alone: delete takes
    /// what the init left.
    func testStoppingAContainerThatSharesItsPidNamespace() throws {
        var r = ctr(["run", "-d", "--runtime", Env.shim, ref, "pod", "/bin/sleep", "300"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let podPid = try XCTUnwrap(
            ctr(["task", "ls"]).stdout.split(separator: "\n").first { $0.hasPrefix("pod") }
                .flatMap { Int($0.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) })
        var runtimes = [("skiff", ["--runtime", Env.shim])]
        if Env.which("containerd-shim-runc-v2") != nil && Env.which("runc") != nil { runtimes.append(("runc", ["--runtime", "io.containerd.runc.v2"])) }
        var stopTimes: [String: Double] = [:]
        for (name, runtime) in runtimes {
            let id = "shared-" + name
            let marker = "sleep 12\(name == "skiff" ? 1 : 2)"
            r = ctr(
                ["run", "-d"] + runtime + [
                    "--with-ns", "pid:/proc/\(podPid)/ns/pid", ref, id,
                    "/bin/sh", "-c", "\(marker)3 & \(marker)4"
                ])
            XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
            XCTAssertTrue(waitFor(id, in: ["task", "ls"]))
            for _ in 0..<100 where Host.processes(mentioning: marker + "3").isEmpty { usleep(20_000) }
            XCTAssertEqual(Host.processes(mentioning: marker + "3").count, 1, "\(name): the background child runs")
            let t0 = Date()
            XCTAssertEqual(ctr(["task", "kill", id]).code, 0)
            var stopped = false
            for _ in 0..<400 {
                if ctr(["task", "ls"]).stdout.split(separator: "\n").contains(where: { $0.hasPrefix(id) && $0.contains("STOPPED") }) { stopped = true; break }
                usleep(10_000)
            }
            stopTimes[name] = Date().timeIntervalSince(t0)
            XCTAssertTrue(stopped, "\(name): stopped")
            for _ in 0..<100 where !Host.processes(mentioning: marker).isEmpty { usleep(20_000) }
            XCTAssertEqual(Host.processes(mentioning: marker), [], "\(name): nothing of the container is left once it stopped")
            XCTAssertEqual(ctr(["task", "delete", id]).code, 0)
            XCTAssertEqual(ctr(["container", "delete", id]).code, 0)
        }
        print(
            "stop of a container sharing its pid namespace: "
                + stopTimes.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value * 1000)) ms" }.joined(separator: ", "))
        XCTAssertLessThan(stopTimes["skiff"] ?? 99, max(2 * (stopTimes["runc"] ?? 0.25), 0.5), "within 2x of runc's stop time")
        XCTAssertEqual(ctr(["task", "kill", "-s", "KILL", "pod"]).code, 0)
        XCTAssertTrue(waitFor("STOPPED", in: ["task", "ls"]))
        XCTAssertEqual(ctr(["task", "delete", "pod"]).code, 0)
        XCTAssertEqual(ctr(["container", "delete", "pod"]).code, 0)
    }
}

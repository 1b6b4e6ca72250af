import Foundation
import XCTest

/// skiffctl against what an outside attack found: commands that must not drop records, shims
/// that die under a command, partial downloads, registries that redirect, stall, send what is not
/// an image or far too much, concurrent pulls, and errors that must read as sentences.
final class ManagerFaultTests: ImageTestCase {
    var registries: [Background] = []

    override func tearDown() {
        registries.forEach { $0.stop(SIGKILL) }
        super.tearDown()
    }

    func ctl(_ args: [String], env extra: [String: String] = [:], timeout: TimeInterval = 120, root: String = "root") -> CmdResult {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["SKIFF_HOSTS_DIR"] = work + "/certs.d"
        for (k, v) in extra { env[k] = v }
        return Cmd.run(Env.skiffctl, ["--root", work + "/" + root, "--state", work + "/state"] + args, timeout: timeout, env: env)
    }

    var skiffctlArgv: [String] { [Env.skiffctl, "--root", work + "/root", "--state", work + "/state"] }

    /// The hostile registry (fixtures/hostile-registry.py) in `mode`, on a port of its own.
    func registry(_ mode: String) throws -> String {
        let port = Int.random(in: 20000...29000)
        let log = work + "/registry-\(mode.replacingOccurrences(of: "/", with: "_")).log"
        let r = Background(["/usr/bin/python3", Env.packageRoot + "/fixtures/hostile-registry.py", image, "\(port)", mode, "\(port + 1)"], log: log)
        registries.append(r)
        r.waitForHTTP("http://127.0.0.1:\(port)/v2/")
        return "127.0.0.1:\(port)"
    }

    func shimDaemons(_ id: String) -> [pid_t] {
        Host.processes(mentioning: "-id \(id)").filter { pid in
            let cmd = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0")
            return cmd.first?.hasSuffix("containerd-shim-skiff-v2") == true && cmd.last != "start" && cmd.last != "delete"
                && cmd.contains { $0.hasPrefix(work) }  // ours, not another run's
        }
    }

    func removeTask(_ id: String) {
        ctl(["tasks", "kill", "-s", "KILL", id])
        for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        ctl(["tasks", "rm", id]); ctl(["containers", "rm", id])
    }

    // MARK: records

    /// `tasks start -d` of a running task fails and leaves it alone (it used to drop the record
    /// and let `containers rm` delete the snapshot under the live container); `containers rm`
    /// asks the shim even when the bundle lost its address; doctor finds and repairs what the
    /// records do not name.
    func testAFailedCommandNeverDropsALiveTask() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["run", "-d", "skiff/busybox:test", "d1", "/bin/sleep", "60"]).code, 0)
        var r = ctl(["tasks", "start", "-d", "d1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("already exists"), r.stderr)
        XCTAssertTrue(ctl(["tasks", "ls"]).stdout.contains("d1\t"), "the task is still listed")
        // The bundle's address file gone: the shim is still found where it listens.
        unlink(work + "/state/default/d1/address")
        r = ctl(["containers", "rm", "d1"])
        XCTAssertNotEqual(r.code, 0, "containers rm of a live task")
        XCTAssertTrue(r.stderr.contains("it has a task"), r.stderr)
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("task-without-address\td1"), ctl(["doctor"]).stdout)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/state/default/d1/address"))
        // A container the runtime holds without any record (a command that died midway).
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/sleep", "60"])
        try b.write()
        let orphanRoot = work + "/state/runtime/default"
        XCTAssertEqual(Cmd.run(Env.skiff, ["--root", orphanRoot, "run", "-d", "--bundle", b.dir, "orphan1"]).code, 0)
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("container-without-record\torphan1"), ctl(["doctor"]).stdout)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertFalse(Cmd.run(Env.skiff, ["--root", orphanRoot, "list", "-q"]).stdout.contains("orphan1"), "doctor --fix took the orphan down")
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("no problems found"), ctl(["doctor"]).stdout)
        removeTask("d1")
    }

    /// kill -9 of the shim right after `run -d` starts it: skiffctl reports the shim's death with
    /// a message (it died of SIGPIPE, silently, 7 times in 15) and leaves no container, record or
    /// runtime state behind.
    func testShimKilledUnderRunIsReportedAndRolledBack() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        let socketsBefore = Set((try? FileManager.default.contentsOfDirectory(atPath: "/run/containerd/s")) ?? [])
        var killed = 0
        for i in 0..<15 {
            let id = "k\(i)"
            let run = Background(
                skiffctlArgv + ["run", "-d", "skiff/busybox:test", id, "/bin/sleep", "60"],
                env: ProcessInfo.processInfo.environment.merging(["PATH": (Env.shim as NSString).deletingLastPathComponent + ":/usr/bin:/bin"]) { $1 },
                log: work + "/run-\(i).log")
            var shim: pid_t?
            for _ in 0..<3000 where shim == nil { shim = shimDaemons(id).first; if shim == nil { usleep(1000) } }
            if let shim { kill(shim, SIGKILL); killed += 1 }
            var st: Int32 = 0
            for _ in 0..<2000 where waitpid(run.pid, &st, WNOHANG) == 0 { usleep(5000) }
            run.pid = 0
            let out = (try? String(contentsOfFile: work + "/run-\(i).log", encoding: .utf8)) ?? ""
            XCTAssertFalse((st & 0x7f) == SIGPIPE, "skiffctl died of SIGPIPE")
            if (st >> 8) & 0xff != 0 {
                XCTAssertTrue(out.contains("skiffctl:"), "a failure says why: \(out)")
                XCTAssertFalse(ctl(["containers", "ls"]).stdout.contains(id + "\t"), "a failed run leaves no record")
            } else {
                removeTask(id)
            }
        }
        XCTAssertGreaterThan(killed, 0)
        // Nor the dead shims' sockets, nor a cgroup a shim made before it died.
        let socketsAfter = Set((try? FileManager.default.contentsOfDirectory(atPath: "/run/containerd/s")) ?? [])
        XCTAssertEqual(socketsAfter.subtracting(socketsBefore), [], "sockets of killed shims were left")
        if let root = Host.cgroupRoot {
            for i in 0..<15 { XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/default/k\(i)"), "cgroup of k\(i) left") }
        }
        let leftovers = Cmd.run(Env.skiff, ["--root", work + "/state/runtime/default", "list", "-q"]).stdout
        XCTAssertEqual(leftovers, "", "no runtime container without a record")
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("no problems found"), ctl(["doctor"]).stdout)
    }

    /// skiffctl found on PATH (argv[0] "skiffctl") and run from a directory where another user
    /// left a `containerd-shim-skiff-v2`: it looked for the shim next to argv[0], that is in the
    /// working directory, and ran that one as root. It now looks next to its own binary.
    func testAShimInTheWorkingDirectoryIsNotRun() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        let trap = work + "/trap"
        try FileManager.default.createDirectory(atPath: trap, withIntermediateDirectories: true)
        try "#!/bin/sh\ntouch \(trap)/ran\nexit 1\n".write(toFile: trap + "/containerd-shim-skiff-v2", atomically: true, encoding: .utf8)
        chmod(trap + "/containerd-shim-skiff-v2", 0o755)
        var env = ProcessInfo.processInfo.environment
        let dirs = [Env.skiffctl, Env.shim].map { ($0 as NSString).deletingLastPathComponent }
        env["PATH"] = dirs.joined(separator: ":") + ":/usr/bin:/bin"
        let r = Cmd.run(
            "/bin/sh",
            ["-c", "cd \(trap) && exec skiffctl --root \(work!)/root --state \(work!)/state run --rm skiff/busybox:test t1 /bin/skiff-payload echo fine"],
            env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("fine"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: trap + "/ran"), "the working directory's shim ran")
    }

    /// A process of another user that calls itself our shim (`-id ../../x`) is not one: doctor
    /// used to trust any command line, and its fix ran the shim's delete as root on a bundle the
    /// other user made (running that user's "runtime" as root).
    func testDoctorIgnoresShimLookalikesOfOtherUsers() throws {
        XCTAssertEqual(ctl(["doctor"]).code, 0)
        let evil = work + "/evil"
        try FileManager.default.createDirectory(atPath: evil + "/b", withIntermediateDirectories: true)
        try "{\"root\":\"\(evil)/rt\",\"binary\":\"/bin/touch\"}".write(toFile: evil + "/b/skiff-shim.json", atomically: true, encoding: .utf8)
        let id = "../../../../../../.." + evil + "/b"
        let fake = Background([
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", "-c",
            "exec -a \(evil)/containerd-shim-skiff-v2 python3 -c 'import time; time.sleep(3083)' -namespace default -address \(work!)/state/skiffctl -id \(id)"
        ])
        defer { fake.stop(SIGKILL) }
        for _ in 0..<100 where Host.processes(mentioning: "time.sleep(3083)").isEmpty { usleep(10_000) }
        XCTAssertFalse(Host.processes(mentioning: "time.sleep(3083)").isEmpty, "the lookalike runs")
        let r = ctl(["doctor", "--fix"])
        XCTAssertFalse(r.stdout.contains("shim-without-record"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: evil + "/b/log.json"), "nothing ran on the other user's bundle")
    }

    /// A shim whose last container was deleted behind its back (skiff delete --force on the
    /// runtime's state) exits instead of running forever.
    func testOrphanedShimExits() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["run", "-d", "skiff/busybox:test", "o1", "/bin/sleep", "60"]).code, 0)
        let shims = shimDaemons("o1")
        XCTAssertEqual(shims.count, 1)
        XCTAssertEqual(Cmd.run(Env.skiff, ["--root", work + "/state/runtime/default", "delete", "--force", "o1"]).code, 0)
        for _ in 0..<500 where shims.contains(where: Host.processAlive) { usleep(10_000) }
        XCTAssertFalse(shims.contains(where: Host.processAlive), "the orphaned shim is still running")
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "o1"]).code, 0)
    }

    // MARK: registries

    /// Blobs served by redirect (Docker Hub, GHCR, S3-backed registries): followed, with the
    /// registry's Authorization dropped on the other host; file:// and loops refused.
    func testBlobRedirects() throws {
        let host = try registry("redirect")
        var r = ctl(["images", "pull", "--plain-http", "\(host)/skiff/busybox:latest"])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = ctl(["run", "--rm", "\(host)/skiff/busybox:latest", "r1", "/bin/skiff-payload", "echo", "redirected"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("redirected"))
        // Storage on the same host but another port is another origin: the token stays behind
        // (it used to follow, as only the host name was compared).
        let samehost = try registry("redirect-port")
        r = ctl(["images", "pull", "--plain-http", "\(samehost)/skiff/busybox:latest"], root: "redirect-port")
        XCTAssertEqual(r.code, 0, r.stderr)
        for (mode, expect) in [("redirect-file", "redirect to file:///etc/passwd refused"), ("redirect-loop", "more than 10 redirects")] {
            let h = try registry(mode)
            // A store of its own: the blobs must come from this registry.
            r = ctl(["images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"], root: mode)
            XCTAssertNotEqual(r.code, 0, mode)
            XCTAssertTrue(r.stderr.contains(expect), "\(mode): \(r.stderr)")
            XCTAssertEqual(ctl(["images", "ls", "-q"], root: mode).stdout, "")
        }
    }

    /// A token realm is a URL the registry chooses: libcurl followed gopher:// (and dict://,
    /// file://, smtp://...), so a registry could make skiffctl send bytes to a service on this
    /// host or read a local file. Only http and https are fetched.
    func testATokenRealmThatIsNotHTTPIsRefused() throws {
        let h = try registry("gopher-realm")
        let r = ctl(["images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("gopher://") && r.stderr.contains("only http and https"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: image + ".gopher"), "the local service was reached")
        XCTAssertEqual(ctl(["images", "ls", "-q"]).stdout, "")
    }

    /// A mirror (hosts.toml) that asks for Basic credentials gets its own from
    /// ~/.docker/config.json, never the upstream registry's: it used to get the upstream's.
    func testAMirrorDoesNotGetTheUpstreamsPassword() throws {
        let mirror = try registry("basic-log")
        let upstream = "upstream.invalid:5000"
        let home = work + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.docker", withIntermediateDirectories: true)
        let secret = Data("alice:s3cret".utf8).base64EncodedString()
        let own = Data("bob:m1rror".utf8).base64EncodedString()
        try #"{"auths": {"\#(upstream)": {"auth": "\#(secret)"}, "\#(mirror)": {"auth": "\#(own)"}}}"#.write(
            toFile: home + "/.docker/config.json", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: work + "/certs.d/" + upstream, withIntermediateDirectories: true)
        try "server = \"http://127.0.0.1:1\"\n\n[host.\"http://\(mirror)\"]\n  capabilities = [\"pull\", \"resolve\"]\n".write(
            toFile: work + "/certs.d/\(upstream)/hosts.toml", atomically: true, encoding: .utf8)
        let r = ctl(["images", "pull", "\(upstream)/skiff/busybox:latest"], env: ["HOME": home])
        XCTAssertNotEqual(r.code, 0, "the mirror refuses everyone, and the server does not answer")
        let seen = (try? String(contentsOfFile: image + ".auth", encoding: .utf8)) ?? ""
        XCTAssertFalse(seen.contains(secret), "the mirror got the upstream's password: \(seen)")
        XCTAssertTrue(seen.contains(own), "the mirror was asked with its own credentials: \(seen)")
    }

    /// Ten pulls of one image into one store at once all succeed (one writer per blob; the
    /// others wait and find it there). Before, most failed blaming the registry.
    func testConcurrentPullsOfOneImage() throws {
        let host = try registry("plain")
        final class Codes: @unchecked Sendable {
            let lock = NSLock(); var values: [Int32] = []; var errors: [String] = []
        }
        let codes = Codes()
        DispatchQueue.concurrentPerform(iterations: 10) { _ in
            let r = ctl(["images", "pull", "--plain-http", "\(host)/skiff/busybox:latest"])
            codes.lock.lock(); codes.values.append(r.code); if r.code != 0 { codes.errors.append(r.stderr) }; codes.lock.unlock()
        }
        XCTAssertEqual(codes.values, Array(repeating: 0, count: 10), "\(codes.errors)")
        XCTAssertEqual(ctl(["images", "check"]).code, 0)
    }

    /// A registry that stops sending mid-blob: the pull ends after the progress timeout with a
    /// message, the partial download is kept and resumed; SIGINT stops a stalled pull cleanly.
    func testStalledRegistryTimesOutAndSigintStopsCleanly() throws {
        let stall = try registry("stall")
        let t0 = Date()
        var r = ctl(["images", "pull", "--plain-http", "\(stall)/skiff/busybox:latest"], env: ["SKIFF_PULL_PROGRESS_TIMEOUT": "2"], timeout: 60)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 20)
        XCTAssertTrue(r.stderr.contains("sent nothing for 2 s"), r.stderr)
        XCTAssertEqual(ctl(["images", "ls", "-q"]).stdout, "", "nothing half-recorded")
        XCTAssertEqual(snapshotDirs(), [], "no half-unpacked layer is kept")
        let ingest = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/content/ingest")) ?? []
        XCTAssertTrue(ingest.contains { $0.hasPrefix("pull-") && !$0.hasSuffix(".lock") && !$0.hasSuffix(".part") }, "the partial is kept: \(ingest)")

        let pull = Background(skiffctlArgv + ["images", "pull", "--plain-http", "\(stall)/skiff/busybox:latest"], log: work + "/sigint.log")
        usleep(1_500_000)
        kill(pull.pid, SIGINT)
        var st: Int32 = 0
        for _ in 0..<1000 where waitpid(pull.pid, &st, WNOHANG) == 0 { usleep(10_000) }
        pull.pid = 0
        XCTAssertEqual((st >> 8) & 0xff, 130, "exit 128+SIGINT")
        XCTAssertTrue(((try? String(contentsOfFile: work + "/sigint.log", encoding: .utf8)) ?? "").contains("interrupted by signal 2"))
        XCTAssertEqual(snapshotDirs(), [], "no half-unpacked layer is kept")

        // The same image from a registry that works: the download resumes and completes.
        let good = try registry("plain")
        r = ctl(["images", "pull", "--plain-http", "\(good)/skiff/busybox:latest"])
        XCTAssertEqual(r.code, 0, r.stderr)
        // Nothing left in ingest but lock files no one holds; prune takes those too.
        _ = ctl(["content", "prune"])
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: work + "/root/content/ingest")) ?? [], [])
    }

    /// Snapshot directories in the store (`.locks` aside): a failed pull leaves none.
    func snapshotDirs(_ root: String = "root") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work + "/\(root)/snapshots")) ?? []).filter { $0 != ".locks" }.sorted()
    }

    /// Layers are unpacked while they download: with half of the layer sent and the rest held
    /// back by the registry, the layer's pending snapshot already holds files of it; once the
    /// rest comes, the pull completes with the snapshot committed and the image runs. (Before,
    /// nothing was unpacked until every blob was in; this waited in vain.)
    func testLayersAreUnpackedWhileTheyDownload() throws {
        let h = try registry("hold")
        defer { releaseHeldLayers() }  // never leave the server waiting
        let pull = try startHeldPull(h)
        // The pending layer is the pull's while it lasts: not removed (its id would go to the next
        // snapshot, whose directory the pull would then delete), not a parent, not pruned.
        let pending = ctl(["snapshots", "ls"]).stdout.split(separator: "\n").first { $0.hasSuffix("\tcommitted-pending") }
        XCTAssertNotNil(pending, ctl(["snapshots", "ls"]).stdout)
        let key = String(pending?.split(separator: "\t").first ?? "")
        var r = ctl(["snapshots", "rm", key])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("it is being unpacked"), r.stderr)
        r = ctl(["snapshots", "prepare", "act1", key])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("not committed"), r.stderr)
        XCTAssertEqual(ctl(["images", "prune"]).code, 0)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertTrue(ctl(["snapshots", "ls"]).stdout.contains(key + "\t"), "the pending layer survives prune and doctor")
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pull.pid, &st, WNOHANG), 0, "the pull is still waiting for the rest of the layer")
        finishHeldPull(pull)
        assertUnpackedAndRuns("\(h)/skiff/busybox:latest", "s1", echo: "streamed")
    }

    /// A download a registry trickles holds up no other command that needs the same layers (the
    /// pull held each layer's lock for as long as its download ran, and the other waited just as
    /// long): a pull of the same layers as other blobs, from another registry, unpacks and
    /// commits them while the first still waits; the first then throws its copy away, and of
    /// the two extractions only the layers are left, no pending record, no lock file.
    func testAHeldDownloadDoesNotHoldUpAnotherUnpackOfItsLayers() throws {
        let h = try registry("hold")
        defer { releaseHeldLayers() }
        let pull = try startHeldPull(h)
        let other = try registry("regzip")
        let r = ctl(["images", "pull", "--plain-http", "\(other)/skiff/busybox:latest"], timeout: 60)
        XCTAssertEqual(r.code, 0, r.stderr)
        var st: Int32 = 0
        XCTAssertEqual(waitpid(pull.pid, &st, WNOHANG), 0, "the first pull is still waiting for the rest of the layer")
        let run = ctl(["run", "--rm", "\(other)/skiff/busybox:latest", "s1", "/bin/skiff-payload", "echo", "first"])
        XCTAssertEqual(run.code, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("first"), run.stdout)
        finishHeldPull(pull)
        assertUnpackedAndRuns("\(h)/skiff/busybox:latest", "s2", echo: "second")
        let locks = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/snapshots/.locks")) ?? []
        XCTAssertTrue(locks.allSatisfy { $0.hasPrefix("sha256-") }, "only the layers' locks are left: \(locks)")
    }

    /// Starts a pull from a registry in `hold` mode and returns once its layer's extraction holds
    /// files (half of the layer is in).
    func startHeldPull(_ host: String) throws -> Background {
        let pull = Background(skiffctlArgv + ["images", "pull", "--plain-http", "\(host)/skiff/busybox:latest"], log: work + "/hold.log")
        var extracted: [String] = []
        for _ in 0..<400 where extracted.isEmpty {
            usleep(50_000)
            for d in snapshotDirs() {
                extracted += (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/snapshots/\(d)/fs")) ?? []
            }
        }
        XCTAssertFalse(extracted.isEmpty, "nothing of the layer was unpacked while half of it was in")
        return pull
    }

    func releaseHeldLayers() { FileManager.default.createFile(atPath: image + ".release", contents: nil) }

    /// Lets the held registry send the rest and checks that the pull then succeeds.
    func finishHeldPull(_ pull: Background, file: StaticString = #filePath, line: UInt = #line) {
        releaseHeldLayers()
        var st: Int32 = 0
        var done: pid_t = 0
        for _ in 0..<1200 where done == 0 {
            done = waitpid(pull.pid, &st, WNOHANG)
            if done == 0 { usleep(50_000) }
        }
        pull.pid = 0
        XCTAssertEqual(
            done > 0 ? (st >> 8) & 0xff : -1, 0, (try? String(contentsOfFile: work + "/hold.log", encoding: .utf8)) ?? "", file: file,
            line: line)
    }

    /// A container's snapshot is pending while `prepare` copies its parent (native snapshots: a
    /// whole tree, which can take long); prune and doctor took the pending record for a crash's
    /// and removed it from under the copy (no lock was held), and the create then failed. The
    /// copy is slowed down here with strace, which delays cp's execve.
    func testASlowPrepareIsNotRemovedFromUnderIt() throws {
        try Env.requireStrace("slow the copy down")
        let native = ["SKIFF_SNAPSHOTTER": "native"]
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["containers", "create", "skiff/busybox:test", "n0"], env: native).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "n0"], env: native).code, 0)
        let top = ctl(["snapshots", "ls"], env: native).stdout.split(separator: "\n").last { $0.hasSuffix("\tcommitted") }
        let parent = String(top?.split(separator: "\t").first ?? "")
        XCTAssertTrue(parent.hasPrefix("sha256:"), ctl(["snapshots", "ls"], env: native).stdout)
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_SNAPSHOTTER"] = "native"
        let prepare = Background(
            ["/usr/bin/strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execve", "-e", "inject=execve:delay_enter=3000000"]
                + skiffctlArgv + ["snapshots", "prepare", "slow1", parent], env: env, log: work + "/prepare.log")
        var listed = ""
        for _ in 0..<200 where !listed.contains("slow1\t") {
            usleep(20_000)
            listed = ctl(["snapshots", "ls"], env: native).stdout
        }
        XCTAssertTrue(listed.contains("slow1\t\(parent)\tactive-pending\n"), listed)
        XCTAssertEqual(ctl(["snapshots", "prune"], env: native).code, 0)
        XCTAssertEqual(ctl(["doctor", "--fix"], env: native).code, 0)
        XCTAssertTrue(ctl(["snapshots", "ls"], env: native).stdout.contains("slow1\t"), "the pending snapshot survives prune and doctor")
        var st: Int32 = 0
        XCTAssertEqual(waitpid(prepare.pid, &st, 0), prepare.pid)
        prepare.pid = 0
        XCTAssertEqual((st >> 8) & 0xff, 0, (try? String(contentsOfFile: work + "/prepare.log", encoding: .utf8)) ?? "")
        XCTAssertTrue(ctl(["snapshots", "ls"], env: native).stdout.contains("slow1\t\(parent)\tactive\n"))
        XCTAssertEqual(ctl(["snapshots", "rm", "slow1"], env: native).code, 0)
        let locks = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/snapshots/.locks")) ?? []
        XCTAssertTrue(locks.allSatisfy { $0.hasPrefix("native-sha256-") }, "only the layers' locks are left: \(locks)")
    }

    /// After a pull: its layers committed, none pending; the image runs and checks out.
    func assertUnpackedAndRuns(_ ref: String, _ id: String, echo word: String, file: StaticString = #filePath, line: UInt = #line) {
        let snaps = ctl(["snapshots", "ls"]).stdout
        XCTAssertTrue(snaps.contains("committed") && !snaps.contains("pending"), snaps, file: file, line: line)
        let r = ctl(["run", "--rm", ref, id, "/bin/skiff-payload", "echo", word])
        XCTAssertEqual(r.code, 0, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.contains(word), r.stdout, file: file, line: line)
        XCTAssertEqual(ctl(["images", "check"]).code, 0, file: file, line: line)
    }

    /// An image config whose first diff ID is not a digest: a container's id made the unpack
    /// while downloading take that container's snapshot for a crashed layer and delete it, and
    /// a path made the layer lock file outside the store, and a committed snapshot's name put the
    /// image on top of that snapshot. All are refused; nothing is touched. Nor can a snapshot be
    /// prepared or committed under a layer's name (a sha256 digest).
    func testADiffIDThatIsNotADigestIsRefused() throws {
        let plain = try registry("plain")
        XCTAssertEqual(ctl(["images", "pull", "--plain-http", "\(plain)/skiff/busybox:latest"]).code, 0)
        XCTAssertEqual(ctl(["containers", "create", "\(plain)/skiff/busybox:latest", "web", "/bin/true"]).code, 0)
        defer { ctl(["containers", "rm", "web"]) }
        let layer = String(ctl(["snapshots", "ls"]).stdout.split(separator: "\n").first { $0.hasPrefix("sha256:") }?.prefix(71) ?? "")
        XCTAssertEqual(ctl(["snapshots", "prepare", "base-work", layer]).code, 0)
        XCTAssertEqual(ctl(["snapshots", "commit", "base", "base-work"]).code, 0)
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        for args in [["prepare", digest, layer], ["prepare", layer, layer], ["commit", digest, "web"]] {
            let r = ctl(["snapshots"] + args)
            XCTAssertNotEqual(r.code, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains("a sha256 digest names a layer"), "\(args): \(r.stderr)")
        }
        for mode in ["diffid=web", "diffid=../../escaped", "diffid=base"] {
            let h = try registry(mode)
            let r = ctl(["images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"])
            XCTAssertNotEqual(r.code, 0, mode)
            XCTAssertTrue(r.stderr.contains("not a sha256 digest"), "\(mode): \(r.stderr)")
        }
        let snaps = ctl(["snapshots", "ls"]).stdout
        XCTAssertTrue(snaps.contains("web\t") && snaps.contains("\nbase\t"), "the container's and the committed snapshot are still there: \(snaps)")
        XCTAssertFalse(snaps.contains("\tbase\t"), "nothing is built on the committed snapshot: \(snaps)")
        XCTAssertFalse(snaps.contains("pending") || snaps.contains("extract-"), snaps)
        XCTAssertEqual(ctl(["containers", "ls"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/root/escaped"), "no lock file outside .locks")
    }

    /// An archive (argv[1]) of kind argv[2] holding one image with one uncompressed 160 MB layer
    /// of random bytes: "oci" (an OCI layout whose index also lists the layer itself), "docker"
    /// (docker-archive), "huge-config" (a 9 MiB config) or "huge-index" (a 5 MiB index.json).
    static let bigImageScript = #"""
        import hashlib, io, json, os, sys, tarfile
        out, kind = sys.argv[1], sys.argv[2]
        big = io.BytesIO()
        with tarfile.open(fileobj=big, mode="w") as t:
            data = os.urandom(160 << 20)
            ti = tarfile.TarInfo("big.bin"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        layer = big.getvalue()
        ld = hashlib.sha256(layer).hexdigest()
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]},
                          "padding": "x" * ((9 << 20) if kind == "huge-config" else 0)}).encode()
        cd = hashlib.sha256(cfg).hexdigest()
        def add(t, name, b):
            ti = tarfile.TarInfo(name); ti.size = len(b); t.addfile(ti, io.BytesIO(b))
        with tarfile.open(out, "w") as t:
            if kind in ("oci", "huge-config"):
                m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}]}).encode()
                md = hashlib.sha256(m).hexdigest()
                add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
                add(t, "blobs/sha256/" + cd, cfg); add(t, "blobs/sha256/" + ld, layer); add(t, "blobs/sha256/" + md, m)
                # The index also lists the layer itself (any blob may be listed): kept as an image
                # with --index-name, it must not make every read of the index fail.
                add(t, "index.json", json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + md, "size": len(m), "annotations": {"io.containerd.image.name": "docker.io/skiff/big:" + kind}},
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}]}).encode())
            elif kind == "docker":
                add(t, cd + ".json", cfg); add(t, ld + "/layer.tar", layer)
                add(t, "manifest.json", json.dumps([{"Config": cd + ".json", "RepoTags": ["skiff/big:docker"], "Layers": [ld + "/layer.tar"]}]).encode())
            else:
                add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
                add(t, "index.json", b" " * (5 << 20))
        """#

    /// `images import` read each archive member whole into memory (twice over): a layer of any
    /// size needed that much memory, and a hostile archive could state any size. Members are now
    /// streamed into the store: importing a 160 MB layer (OCI layout, then docker-archive) stays
    /// far below that in peak RSS, and an index.json past the manifest limit is refused.
    /// `images export` (both formats) and `content get` read each blob whole too: they now copy
    /// from the blob's file (the docker format uncompresses as it writes), checked the same way.
    func testImportStreamsLargeLayers() throws {
        let script = ManagerFaultTests.bigImageScript
        for kind in ["oci", "docker", "huge-index"] {
            let archive = work + "/\(kind).tar"
            let made = Cmd.run("/usr/bin/python3", ["-c", script, archive, kind], timeout: 120)
            XCTAssertEqual(made.code, 0, made.stderr)
            let r = Cmd.run(
                "/usr/bin/time",
                ["-f", "maxrss=%M", Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "images", "import"]
                    + (kind == "oci" ? ["--index-name", "skiff/big:index"] : []) + [archive],
                timeout: 120)
            try? FileManager.default.removeItem(atPath: archive)
            if kind == "huge-index" {
                XCTAssertNotEqual(r.code, 0)
                XCTAssertTrue(r.stderr.contains("index.json is 5242880 bytes, more than the 4 MiB allowed"), r.stderr)
                continue
            }
            XCTAssertEqual(r.code, 0, r.stderr)
            let kb = Int(r.stderr.firstMatch(of: #/maxrss=([0-9]+)/#)?.1 ?? "") ?? Int.max
            XCTAssertLessThan(kb, 80 << 10, "\(kind): peak RSS \(kb) KiB for a 160 MB layer")
        }
        let images = ctl(["images", "ls", "-q"]).stdout
        XCTAssertTrue(images.contains("docker.io/skiff/big:oci") && images.contains("docker.io/skiff/big:docker"), images)
        XCTAssertEqual(ctl(["images", "check"]).code, 0)
        let prune = ctl(["content", "prune"])
        XCTAssertEqual(prune.code, 0, "an index listing a large layer stopped garbage collection: \(prune.stderr)")

        // Out again, each blob copied from its file: the archive is whole and memory stays low.
        let check = #"""
            import hashlib, json, sys, tarfile
            t = tarfile.open(sys.argv[1])
            names = t.getnames()
            if "index.json" in names:
                idx = json.load(t.extractfile("index.json"))
                m = json.load(t.extractfile("blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
                want = [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]
                got = ["sha256:" + hashlib.sha256(t.extractfile("blobs/sha256/" + d[7:]).read()).hexdigest() for d in want]
            else:
                e = json.load(t.extractfile("manifest.json"))[0]
                cfg = json.load(t.extractfile(e["Config"]))
                want = cfg["rootfs"]["diff_ids"]
                got = ["sha256:" + hashlib.sha256(t.extractfile(l).read()).hexdigest() for l in e["Layers"]]
            print("ok" if want == got and len(want) >= 1 else "mismatch %s %s" % (want, got))
            """#
        for format in ["oci", "docker"] {
            let out = work + "/out-\(format).tar"
            let r = Cmd.run(
                "/usr/bin/time",
                ["-f", "maxrss=%M", Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "images", "export", "--format", format, out]
                    + ["docker.io/skiff/big:\(format)"],
                timeout: 120)
            XCTAssertEqual(r.code, 0, r.stderr)
            let kb = Int(r.stderr.firstMatch(of: #/maxrss=([0-9]+)/#)?.1 ?? "") ?? Int.max
            XCTAssertLessThan(kb, 80 << 10, "export --format \(format): peak RSS \(kb) KiB for a 160 MB layer")
            let verdict = Cmd.run("/usr/bin/python3", ["-c", check, out], timeout: 120)
            XCTAssertEqual(verdict.stdout, "ok\n", "export --format \(format): " + verdict.stdout + verdict.stderr)
            try? FileManager.default.removeItem(atPath: out)
        }
        let layer = try XCTUnwrap(
            ctl(["content", "ls"]).stdout.split(separator: "\n").first { ($0.split(separator: "\t").last.flatMap { Int($0) } ?? 0) > 160 << 20 },
            "the layer is in the store")
        let digest = String(layer.split(separator: "\t")[0])
        let get = Cmd.run(
            "/bin/sh",
            [
                "-c", "/usr/bin/time -f maxrss=%M \"$@\" | sha256sum", "sh", Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "content",
                "get", digest
            ],
            timeout: 120)
        XCTAssertEqual(get.code, 0, get.stderr)
        XCTAssertEqual(get.stdout.split(separator: " ").first.map { "sha256:" + $0 }, digest, "content get writes the blob")
        let getKB = Int(get.stderr.firstMatch(of: #/maxrss=([0-9]+)/#)?.1 ?? "") ?? Int.max
        XCTAssertLessThan(getKB, 80 << 10, "content get: peak RSS \(getKB) KiB for a 160 MB blob")
        // A config past 8 MiB is imported (streamed) but never read whole: using it is refused.
        let archive = work + "/huge-config.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", script, archive, "huge-config"], timeout: 120).code, 0)
        XCTAssertEqual(ctl(["images", "import", archive]).code, 0)
        let r = ctl(["containers", "create", "docker.io/skiff/big:huge-config", "h1", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("more than the 8 MiB a manifest, index or config may have"), r.stderr)
    }

    /// A partial download in ingest that is not the start of the blob, resumed from a registry
    /// that answers the Range request with the whole blob (200): the whole blob replaces the
    /// partial (it used to fail, the body capped at the bytes left after the partial), and what
    /// is unpacked is the verified blob; the image runs.
    func testAResumeAnsweredWithTheWholeBlobReplacesThePartial() throws {
        let h = try registry("no-range")
        let layers = Cmd.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import json, sys, tarfile
                t = tarfile.open(sys.argv[1])
                index = json.load(t.extractfile("index.json"))
                m = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
                for l in m["layers"]: print(l["digest"].split(":")[1], l["size"])
                """, image
            ])
        XCTAssertEqual(layers.code, 0, layers.stderr)
        XCTAssertEqual(ctl(["ns", "ls"]).code, 0)  // creates the store
        for line in layers.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            // A third of the layer's size, in bytes that are not the layer's.
            try Data(repeating: 0x5a, count: Int(f[1])! / 3).write(to: URL(fileURLWithPath: work + "/root/content/ingest/pull-" + f[0]))
        }
        let r = ctl(["images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"])
        XCTAssertEqual(r.code, 0, r.stderr)
        assertUnpackedAndRuns("\(h)/skiff/busybox:latest", "w1", echo: "whole")
    }

    /// What is not an image, or far too much, fails with a sentence naming it.
    func testHostileImagesAreExplained() throws {
        for (mode, expect) in [
            ("bad-config", "read image config"), ("nested-index", "nested indexes are not supported"),
            ("huge-manifest", "larger than the 4 MiB allowed"), ("huge-config", "more than the 8 MiB allowed")
        ] {
            let h = try registry(mode)
            let r = ctl(["-n", mode, "images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"])
            XCTAssertNotEqual(r.code, 0, mode)
            XCTAssertTrue(r.stderr.contains(expect), "\(mode): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("DecodingError") || r.stderr.contains("Swift."), "\(mode): \(r.stderr)")
            XCTAssertEqual(ctl(["-n", mode, "images", "ls", "-q"]).stdout, "", mode)
        }
    }

    /// A registry that streams past a blob's size: the download stops at the size the manifest
    /// gave (it used to go on until the disk was full), and nothing is kept past it.
    func testABlobLongerThanItsDescriptorIsCutOff() throws {
        let h = try registry("endless-blob")
        let r = ctl(["images", "pull", "--plain-http", "\(h)/skiff/busybox:latest"], timeout: 60)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("the registry sent more than the"), r.stderr)
        XCTAssertEqual(ctl(["images", "ls", "-q"]).stdout, "")
        let imageSize = (try FileManager.default.attributesOfItem(atPath: image)[.size] as? Int) ?? 0
        let du = Cmd.run("/usr/bin/du", ["-sb", work + "/root"]).stdout.split(separator: "\t").first.flatMap { Int($0) } ?? .max
        XCTAssertLessThan(du, imageSize * 2 + (1 << 20), "the store holds no more than the image")
    }

    // MARK: store and errors

    /// --root naming a file, a store on a read-only filesystem (reading commands still work),
    /// a stale download removed by prune and reported by doctor, and the snapshotter recorded
    /// with the container.
    func testStoreErrorsAndHousekeeping() throws {
        FileManager.default.createFile(atPath: work + "/afile", contents: Data("x".utf8))
        var r = Cmd.run(Env.skiffctl, ["--root", work + "/afile", "--state", work + "/state", "images", "ls"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.hasPrefix("skiffctl: open store directory \"\(work!)/afile\": not a directory"), r.stderr)

        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        let ingest = work + "/root/content/ingest/pull-" + String(repeating: "ab", count: 32)
        FileManager.default.createFile(atPath: ingest, contents: Data(repeating: 1, count: 1000))
        FileManager.default.createFile(atPath: ingest + ".lock", contents: Data())
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("stale-ingest"), ctl(["doctor"]).stdout)
        r = ctl(["content", "prune"])
        XCTAssertTrue(r.stdout.contains("interrupted download"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ingest))
        // A snapshot directory without a record (a crash between a discard's two steps) is
        // reported and removed; a directory that is not a snapshot's is not touched.
        for d in ["/root/snapshots/977/fs", "/root/snapshots/notes"] {
            try FileManager.default.createDirectory(atPath: work + d, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: work + d + "/f", contents: Data("x".utf8))
        }
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("snapshot-without-record\t977\t"), ctl(["doctor"]).stdout)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/root/snapshots/977"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/root/snapshots/notes/f"))
        // The lock file of a snapshot whose maker died (its name hashes the key) goes too.
        let lock = work + "/root/snapshots/.locks/key-" + String(repeating: "0f", count: 32)
        try FileManager.default.createDirectory(atPath: work + "/root/snapshots/.locks", withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: lock, contents: Data()))
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("stale-lock\tkey-"), ctl(["doctor"]).stdout)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lock))
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("no problems found"), ctl(["doctor"]).stdout)
        // A download abandoned two days ago expires at the next pull (even one that fails);
        // a fresh one is kept for resume.
        let stale = work + "/root/content/ingest/pull-" + String(repeating: "cd", count: 32)
        let fresh = work + "/root/content/ingest/pull-" + String(repeating: "ef", count: 32)
        for f in [stale, fresh] {
            FileManager.default.createFile(atPath: f, contents: Data(repeating: 1, count: 1000))
            FileManager.default.createFile(atPath: f + ".lock", contents: Data())
        }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86400)], ofItemAtPath: stale)
        XCTAssertNotEqual(ctl(["images", "pull", "127.0.0.1:1/nothing:here"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "the abandoned download expired")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh), "a recent partial is kept for resume")

        // No room to unpack (snapshots on a 64k filesystem): the error names the file and the errno.
        let tiny = work + "/tiny"
        try FileManager.default.createDirectory(atPath: tiny + "/root/snapshots", withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", tiny + "/root/snapshots"]).code, 0)
        defer { Cmd.run("/bin/umount", ["-l", tiny + "/root/snapshots"]) }
        let tinyctl = { (a: [String]) in Cmd.run(Env.skiffctl, ["--root", tiny + "/root", "--state", tiny + "/state"] + a) }
        XCTAssertEqual(tinyctl(["images", "import", image]).code, 0)
        r = tinyctl(["containers", "create", "skiff/busybox:test", "t1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("unpack: write \"\(tiny)/root/snapshots/") && r.stderr.contains("no space left on device"), r.stderr)
        XCTAssertFalse(r.stderr.contains("fd "), r.stderr)
        XCTAssertEqual(tinyctl(["containers", "ls", "-q"]).stdout, "", "no container recorded")
        XCTAssertEqual(tinyctl(["snapshots", "ls"]).stdout.split(separator: "\n").count, 1, "no snapshot left")

        r = ctl(["containers", "create", "skiff/busybox:test", "n1"], env: ["SKIFF_SNAPSHOTTER": "native"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(ctl(["containers", "info", "n1"]).stdout.contains("\"Snapshotter\": \"native\""), ctl(["containers", "info", "n1"]).stdout)
        XCTAssertEqual(ctl(["containers", "rm", "n1"]).code, 0)

        // The store on a read-only filesystem: images ls answers, a pull says why it cannot.
        let ro = work + "/ro"
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "tmpfs", ro]).code, 0)
        defer { Cmd.run("/bin/umount", ["-l", ro]) }
        let roctl = { (a: [String]) in Cmd.run(Env.skiffctl, ["--root", ro + "/root", "--state", ro + "/state"] + a) }
        XCTAssertEqual(roctl(["images", "import", self.image]).code, 0)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-o", "remount,ro", ro]).code, 0)
        r = roctl(["images", "ls", "-q"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("docker.io/skiff/busybox:test"), r.stdout)
        r = roctl(["images", "tag", "skiff/busybox:test", "skiff/busybox:x"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.hasPrefix("skiffctl:") && r.stderr.contains("readonly"), r.stderr)
    }

    /// An OCI archive whose ref.name is only a tag (umoci, the OCI layout spec): refused without
    /// --base-name (it was imported as docker.io/library/latest:latest), NAME:TAG with it;
    /// --index-name keeps the index.
    func testImportOfATagOnlyArchive() throws {
        let tagged = work + "/tagged.tar"
        XCTAssertEqual(
            Cmd.run(
                "/usr/bin/python3",
                [
                    "-c",
                    """
                    import json, sys, tarfile, io
                    src, dst = sys.argv[1], sys.argv[2]
                    with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
                        for m in t.getmembers():
                            data = t.extractfile(m).read()
                            if m.name == "index.json":
                                idx = json.loads(data)
                                idx["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
                                data = json.dumps(idx).encode(); m.size = len(data)
                            o.addfile(m, io.BytesIO(data))
                    """, image, tagged
                ]
            ).code, 0)
        var r = ctl(["images", "import", tagged])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("only by the tag \"latest\"") && r.stderr.contains("--base-name"), r.stderr)
        r = ctl(["images", "import", "--base-name", "example.com/app", "--index-name", "example.com/app-index:1", tagged])
        XCTAssertEqual(r.code, 0, r.stderr)
        let ls = ctl(["images", "ls", "-q"]).stdout
        XCTAssertTrue(ls.contains("example.com/app:latest") && ls.contains("example.com/app-index:1"), ls)
        XCTAssertFalse(ls.contains("library/latest"), ls)
    }

    /// Output a file:// log could not take (a full disk) is reported by `tasks ls`.
    func testLostLogOutputIsReported() throws {
        let full = work + "/full"
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", full]).code, 0)
        defer { Cmd.run("/bin/umount", ["-l", full]) }
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        var r = ctl([
            "run", "-d", "--log-uri", "file://\(full)/out.log", "skiff/busybox:test", "l1",
            "/bin/sh", "-c", "yes 0123456789012345678901234567890123456789 | head -c 400000; sleep 60"
        ])
        XCTAssertEqual(r.code, 0, r.stderr)
        for _ in 0..<200 where !ctl(["tasks", "ls"]).stderr.contains("bytes lost") { usleep(20_000) }
        r = ctl(["tasks", "ls"])
        XCTAssertTrue(r.stderr.contains("warning: task l1:") && r.stderr.contains("write \"\(full)/out.log\": no space left on device"), r.stderr)
        removeTask("l1")
    }
}

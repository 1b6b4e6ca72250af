import Foundation
import XCTest

/// Bad input gets a clear error, a non-zero exit, and leaves nothing behind.
final class ErrorTests: XCTestCase {
    func expectFailure(
        _ name: String, expect: String, edit: (TestBundle) throws -> Void,
        command: [String]? = nil, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("exit", "0")
        try edit(b)
        let r: CmdResult
        if let command {
            r = Cmd.run(Env.skiff, ["--root", b.stateRoot] + command + ["--bundle", b.dir, "c1"])
        } else {
            r = b.rt(["create", "--bundle", b.dir, "c1"])
        }
        XCTAssertNotEqual(r.code, 0, "\(name): must fail", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(expect), "\(name): stderr \(r.stderr.debugDescription) lacks \(expect.debugDescription)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("c1"), "\(name): the error names the container: \(r.stderr)", file: file, line: line)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: b.stateRoot)) ?? []
        XCTAssertEqual(leftovers, [], "\(name): state dir left behind", file: file, line: line)
        if let root = Host.cgroupRoot, let cg = b.linux["cgroupsPath"] as? String {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + cg), "\(name): cgroup left behind", file: file, line: line)
        }
        XCTAssertEqual(Host.mounts(containing: b.base), [], "\(name): mounts left behind", file: file, line: line)
        XCTAssertEqual(Host.processes(mentioning: b.dir), [], "\(name): processes left behind", file: file, line: line)
    }

    override func setUpWithError() throws { try Env.requireRoot() }

    func testInvalidOciVersion() throws {
        try expectFailure("ociVersion", expect: "invalid ociVersion \"banana\"") { $0.config["ociVersion"] = "banana" }
        try expectFailure("ociVersion major", expect: "unsupported ociVersion \"2.0.0\"") { $0.config["ociVersion"] = "2.0.0" }
    }

    /// What skiff does not apply is refused, not ignored (both were accepted and left out):
    /// Intel RDT (no resctrl support) and a personality other than the host's own.
    func testWhatIsNotAppliedIsRefused() throws {
        try expectFailure("intelRdt", expect: "linux.intelRdt is not supported") { $0.linux["intelRdt"] = ["closID": "x", "l3CacheSchema": "L3:0=f"] }
        // Members this model did not list were read as nothing asked: the spec's later ones
        // (schemata, enableMonitoring) and any other.
        for rdt: [String: Any] in [["schemata": ["L3:0=f"]], ["enableMonitoring": true], ["closId": "x"], ["closID": ""], ["l3CacheSchema": "   "]] {
            try expectFailure("intelRdt \(rdt)", expect: "linux.intelRdt is not supported") { $0.linux["intelRdt"] = rdt }
        }
        try expectFailure("personality", expect: "linux.personality \"LINUX32\" is not supported") { $0.linux["personality"] = ["domain": "LINUX32"] }
        try expectFailure("personality flags", expect: "with flags is not supported") {
            $0.linux["personality"] = ["domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]]
        }
        // The host's own domain and an empty intelRdt ask for nothing.
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("exit", "0")
        b.linux["personality"] = ["domain": "LINUX"]
        b.linux["intelRdt"] = [String: Any]()
        XCTAssertEqual(b.run().code, 0)
        let r = b.rt(["update", "--l3-cache-schema", "L3:0=f", "c1"])
        XCTAssertTrue(r.code == 1 && r.stderr.contains("Intel RDT schemas are not supported"), r.stderr)
    }

    func testUnknownRlimit() throws {
        try expectFailure("rlimit", expect: "unknown rlimit type \"RLIMIT_BOGUS\"") { b in
            b.process["rlimits"] = [["type": "RLIMIT_BOGUS", "soft": 1, "hard": 1]]
        }
    }

    func testMalformedJSON() throws {
        try expectFailure("json", expect: "malformed JSON") { b in
            b.keepConfigFile = true
            try "{\"ociVersion\": \"1.0.0\", ".write(toFile: b.dir + "/config.json", atomically: true, encoding: .utf8)
        }
    }

    func testMissingConfigAndRootfs() throws {
        try expectFailure("rootfs", expect: "no such file or directory") { b in
            b.config["root"] = ["path": "/nonexistent-rootfs-skiff"]
        }
    }

    func testRelativePathsWhereAbsoluteAreRequired() throws {
        try expectFailure("mount dest", expect: "mounts[].destination \"relative/dir\" is not an absolute path") { b in
            b.addMount(["destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"])
        }
        try expectFailure("cwd", expect: "process.cwd \"home\" is not an absolute path") { b in b.process["cwd"] = "home" }
        try expectFailure("hook", expect: "hooks.prestart[].path \"true\" is not an absolute path") { b in
            b.config["hooks"] = ["prestart": [["path": "true"]]]
        }
    }

    func testMissingExecutableIsReportedFromInsideTheContainer() throws {
        try expectFailure("exec", expect: "exec \"/app/start.sh\": no such file or directory") { b in b.args(["/app/start.sh"]) }
        try expectFailure("exec path", expect: "exec \"nosuchcmd\": executable file not found in $PATH") { b in b.args(["nosuchcmd"]) }
        try expectFailure("exec dir", expect: "exec \"/bin\": is a directory") { b in b.args(["/bin"]) }
    }

    func testMissingCwdAndBadMounts() throws {
        // A missing cwd is created (as runc does); one under a file cannot be.
        try expectFailure("cwd under a file", expect: "process.cwd: open \"/bin/sh/sub\": not a directory") { b in
            b.process["cwd"] = "/bin/sh/sub"
        }
        try expectFailure("bad mount", expect: "mount \"/mnt/x\"") { b in
            b.addMount(["destination": "/mnt/x", "type": "nosuchfs", "source": "none"])
        }
        try expectFailure("bind source", expect: "bind \"/nonexistent-skiff-src\": no such file or directory") { b in
            b.addMount(["destination": "/mnt/x", "type": "bind", "source": "/nonexistent-skiff-src", "options": ["bind"]])
        }
    }

    func testRlimitAboveHardLimitIsRefusedWithHint() throws {
        var cur = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &cur)
        if cur.rlim_max == rlim_t.max { throw XCTSkip("hard limit is unlimited here") }
        // Only a real failure when we lack CAP_SYS_RESOURCE; never raise it for real.
        let check = Cmd.sh("grep CapEff /proc/self/status")
        if let hex = check.stdout.split(separator: "\t").last, let v = UInt64(hex.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16),
            v & (1 << 24) != 0
        {
            throw XCTSkip("this host grants CAP_SYS_RESOURCE; raising the hard limit would succeed")
        }
        try expectFailure("rlimit", expect: "setrlimit \"RLIMIT_NOFILE\": operation not permitted") { b in
            b.process["rlimits"] = [["type": "RLIMIT_NOFILE", "soft": 1024, "hard": UInt64(cur.rlim_max) + 1]]
        }
    }

    func testInvalidIdAndUnknownCommand() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        var r = b.rt(["create", "--bundle", b.dir, "bad/id"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("invalid container id"), r.stderr)
        r = b.rt(["frobnicate"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("unknown command"))
        r = b.rt(["create", "--no-such-flag", "x"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("flag provided but not defined"))
    }

    /// update's size flags: a size that overflows 64 bits trapped (SIGILL, exit 132) and a
    /// negative one other than -1 was taken; both are usage errors, as in runc.
    func testUpdateSizeFlagsAreChecked() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        for (flag, value) in [
            ("memory", "99999999999t"), ("memory-swap", "9000000000000000g"), ("memory-reservation", "9223372036854775807k"), ("memory", "-2"),
            ("memory", "-2k")
        ] {
            let r = b.rt(["update", "--\(flag)", value, "c1"])
            XCTAssertEqual(r.code, 1, "\(flag) \(value): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("invalid --\(flag) \"\(value)\""), r.stderr)
        }
    }

    func testJsonLogFormatForContainerd() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/nonexistent"])
        let log = b.base + "/log.json"
        let r = b.rt(["create", "--bundle", b.dir, "c1"], extraGlobal: ["--log", log, "--log-format", "json"])
        XCTAssertEqual(r.code, 1)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one record: podman decodes the file as a single object")
        let obj = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: String]
        XCTAssertEqual(obj["level"], "error")
        XCTAssertTrue(obj["msg"]!.contains("exec \"/nonexistent\": no such file or directory"), obj["msg"]!)
        // logrus's RFC 3339 in whole seconds, as runc writes it.
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        XCTAssertNotNil(f.date(from: obj["time"]!), obj["time"]!)
    }

    /// --debug: level=debug records for the steps of a command (runc's shape), in the --log file,
    /// as JSON with --log-format json, and as logrus text lines otherwise.
    func testDebugRecords() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/true"])
        let log = b.base + "/debug.json"
        XCTAssertEqual(b.rt(["run", "--bundle", b.dir, "d1"], extraGlobal: ["--debug", "--log", log, "--log-format", "json"]).code, 0)
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String]
        }
        let debug = records.filter { $0["level"] == "debug" }.compactMap { $0["msg"] }
        XCTAssertGreaterThanOrEqual(debug.count, 4, "\(records)")
        XCTAssertTrue(debug.contains { $0.contains("init is pid") } && debug.contains { $0.contains("passed the start barrier") }, "\(debug)")
        let text = b.rt(["state", "nope"], extraGlobal: ["--debug"])
        XCTAssertTrue(text.stderr.contains("level=debug msg="), text.stderr)
        XCTAssertFalse(b.rt(["run", "--bundle", b.dir, "d2"]).stderr.contains("debug"), "nothing without --debug")
    }

    func testStateAndListNeverWarnOnStderr() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "10")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let r = b.rt(["state", "c1"])
        XCTAssertEqual(r.stderr, "")
        XCTAssertFalse(r.stdout.hasSuffix("\n"), "state JSON ends without a newline, like runc")
        XCTAssertEqual(b.rt(["list"]).stderr, "")
    }
}

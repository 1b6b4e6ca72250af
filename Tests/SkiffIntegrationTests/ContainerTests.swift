import Foundation
import XCTest

/// Each feature checked from inside a real container with the payload program.
final class ContainerTests: XCTestCase {
    var b: TestBundle!

    override func setUpWithError() throws {
        try Env.requireRoot()
        b = try TestBundle()
    }

    override func tearDown() {
        b?.cleanup()
        if let b { XCTAssertEqual(Host.mounts(containing: b.base), [], "mounts left behind") }
    }

    func testRunPrintsOutputAndReturnsExitCode() {
        b.payload("echo", "hello from inside", "exit", "3")
        let r = b.run()
        XCTAssertEqual(r.code, 3, r.stderr)
        XCTAssertEqual(r.stdout, "hello from inside\n")
        XCTAssertEqual(r.stderr, "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"), "run must delete the container")
    }

    func testExitBySignalIs128PlusSignal() {
        // A pid-namespace init ignores signals it has no handler for: share the host pid namespace.
        b.setNamespaces((b.linux["namespaces"] as! [[String: Any]]).filter { $0["type"] as? String != "pid" })
        b.payload("kill-self", "15")
        XCTAssertEqual(b.run().code, 143)
    }

    func testEveryNamespaceIsNew() {
        b.addNamespace("user")
        b.linux["uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
        b.linux["gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
        b.addNamespace("time")
        b.addNamespace("cgroup")
        b.payload("ns", "id", "cat", "/proc/self/uid_map")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        let v = r.values
        for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
            XCTAssertNotEqual(v["ns.\(ns)"], Host.ns(ns), "\(ns) namespace is the host's")
            XCTAssertNotNil(v["ns.\(ns)"])
        }
        XCTAssertEqual(v["uid"], "0")
        XCTAssertTrue(r.stdout.contains("100000"), r.stdout)
    }

    func testUserNamespaceWithSeveralRanges() {
        b.addNamespace("user")
        b.linux["uidMappings"] = [["containerID": 0, "hostID": 200000, "size": 1000], ["containerID": 1000, "hostID": 300000, "size": 10]]
        b.linux["gidMappings"] = [["containerID": 0, "hostID": 200000, "size": 2000]]
        b.process["user"] = ["uid": 1005, "gid": 1005]
        b.payload("id", "cat", "/proc/self/uid_map")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["uid"], "1005")
        let lines = r.stdout.split(separator: "\n").filter { $0.contains("200000") || $0.contains("300000") }
        XCTAssertEqual(lines.count, 2, r.stdout)
    }

    func testPidNamespaceMakesPayloadPid1() {
        b.payload("pid")
        XCTAssertEqual(b.run().values["pid"], "1")
    }

    func testHostnameAndDomainname() {
        b.config["hostname"] = "web-1"
        b.config["domainname"] = "example.test"
        b.payload("hostname")
        let v = b.run().values
        XCTAssertEqual(v["hostname"], "web-1")
        XCTAssertEqual(v["domainname"], "example.test")
    }

    func testReadonlyRootfsAndWritableTmpfs() {
        b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m"]])
        b.payload("write", "/etc/x", "write", "/tmp/x")
        let v = b.run().values
        XCTAssertEqual(v["write./etc/x"], "error:Read-only file system")
        XCTAssertEqual(v["write./tmp/x"], "ok")
    }

    func testBindMountReadonlyAndPropagationOption() throws {
        let host = b.base + "/shared"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "data\n".write(toFile: host + "/file", atomically: true, encoding: .utf8)
        b.addMount(["destination": "/mnt/ro", "type": "bind", "source": host, "options": ["rbind", "ro", "rprivate"]])
        b.addMount(["destination": "/mnt/rw", "type": "none", "source": host, "options": ["bind", "rw"]])
        b.addMount(["destination": "/mnt/file", "type": "bind", "source": host + "/file", "options": ["bind", "ro"]])
        b.payload("cat", "/mnt/ro/file", "write", "/mnt/ro/new", "write", "/mnt/rw/new", "cat", "/mnt/file")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["write./mnt/ro/new"], "error:Read-only file system")
        XCTAssertEqual(r.values["write./mnt/rw/new"], "ok")
        XCTAssertEqual(r.stdout.components(separatedBy: "data\n").count, 3, r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: host + "/new"))
    }

    func testMountTypesFromTheSpec() {
        b.addNamespace("cgroup")
        b.payload("cat", "/proc/self/mountinfo")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        for (dest, type) in [
            ("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"),
            ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"), ("/sys/fs/cgroup", "cgroup2")
        ] {
            XCTAssertTrue(
                r.stdout.split(separator: "\n").contains { $0.split(separator: " ")[4] == dest && $0.contains(" - \(type) ") },
                "\(dest) (\(type)) not mounted:\n\(r.stdout)")
        }
    }

    func testMaskedAndReadonlyPaths() throws {
        let masked = try XCTUnwrap(
            ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"].first {
                FileManager.default.fileExists(atPath: $0)
            })
        b.payload("cat", masked, "write", "/proc/sys/kernel/hostname", "stat", "/sys/firmware")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("cat.\(masked)="), "masked file must read as empty: \(r.stdout)")
        XCTAssertTrue(r.stdout.hasPrefix("write./proc/sys"), "nothing of \(masked) is visible: \(r.stdout)")
        XCTAssertTrue(r.values["write./proc/sys/kernel/hostname"]?.hasPrefix("error:Read-only") ?? false, r.stdout)
    }

    func testDefaultAndConfiguredDevices() {
        b.linux["devices"] = [["type": "c", "path": "/dev/custom0", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1000]]
        b.payload(
            "stat", "/dev/null", "stat", "/dev/zero", "stat", "/dev/urandom", "stat", "/dev/custom0", "stat", "/dev/fd",
            "stat", "/dev/ptmx", "write", "/dev/null")
        let v = b.run().values
        XCTAssertEqual(v["stat./dev/null"], "mode:20666,uid:0,gid:0,rdev:1:3")
        XCTAssertEqual(v["stat./dev/zero"], "mode:20666,uid:0,gid:0,rdev:1:5")
        XCTAssertEqual(v["stat./dev/urandom"], "mode:20666,uid:0,gid:0,rdev:1:9")
        XCTAssertEqual(v["stat./dev/custom0"], "mode:20600,uid:1000,gid:1000,rdev:1:3")
        XCTAssertTrue(v["stat./dev/fd"]?.hasPrefix("mode:120777") ?? false, "/dev/fd symlink: \(v)")
        XCTAssertTrue(v["stat./dev/ptmx"]?.hasPrefix("mode:120777") ?? false)
        XCTAssertEqual(v["write./dev/null"], "ok")
    }

    func testUserGroupsAndUmask() {
        b.process["user"] = ["uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 0o077]
        b.payload("id", "umask")
        let v = b.run().values
        XCTAssertEqual(v["uid"], "1000")
        XCTAssertEqual(v["gid"], "1000")
        XCTAssertEqual(v["groups"], "5,100")
        XCTAssertEqual(v["umask"], "0077")
    }

    func testCapabilitySets() {
        // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10
        b.process["capabilities"] = [
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        ]
        b.payload("caps")
        let v = b.run().values
        XCTAssertEqual(v["capbnd"], "0000000000000421")
        XCTAssertEqual(v["capeff"], "0000000000000021")
        XCTAssertEqual(v["capprm"], "0000000000000021")
        XCTAssertEqual(v["capinh"], "0000000000000020")
        XCTAssertEqual(v["capamb"], "0000000000000020")
    }

    func testNonRootUserKeepsOnlyAmbientCaps() {
        b.process["user"] = ["uid": 1000, "gid": 1000]
        b.process["capabilities"] = [
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        ]
        b.payload("caps")
        let v = b.run().values
        XCTAssertEqual(v["capeff"], "0000000000000020")
        XCTAssertEqual(v["capamb"], "0000000000000020")
    }

    func testRlimitsNeverAboveCurrentHardLimit() {
        var cur = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &cur)
        let hard = min(UInt64(cur.rlim_max), 4096)
        b.process["rlimits"] = [["type": "RLIMIT_NOFILE", "soft": 256, "hard": hard], ["type": "RLIMIT_CORE", "soft": 0, "hard": 0]]
        b.payload("rlimits")
        let v = b.run().values
        XCTAssertEqual(v["RLIMIT_NOFILE"], "256:\(hard)")
        XCTAssertEqual(v["RLIMIT_CORE"], "0:0")
    }

    func testEnvCwdAndNoNewPrivileges() throws {
        b.process["env"] = ["PATH=/bin", "GREETING=hello world", "EMPTY="]
        b.process["cwd"] = "/home/user"
        b.process["noNewPrivileges"] = true
        b.args(["skiff-payload", "env", "cwd", "seccomp"])  // PATH lookup
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        let envs = r.stdout.split(separator: "\n").filter { $0.hasPrefix("env=") }.map { String($0.dropFirst(4)) }
        // HOME from the rootfs' /etc/passwd (root's), as runc sets it when the config has none.
        XCTAssertEqual(Set(envs), ["PATH=/bin", "GREETING=hello world", "EMPTY=", "HOME=/root"])
        XCTAssertEqual(r.values["cwd"], "/home/user")
        XCTAssertEqual(r.values["nonewprivs"], "1")
    }

    func testNoPivotAndOomScoreAdj() {
        b.process["oomScoreAdj"] = 321
        b.payload("cat", "/proc/self/oom_score_adj", "stat", "/bin/busybox", "write", "/etc/x")
        let r = b.run(extra: ["--no-pivot"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("321\n"), r.stdout)
        XCTAssertNotNil(r.values["stat./bin/busybox"], "the rootfs is the root without pivot_root too")
        XCTAssertEqual(r.values["write./etc/x"], "error:Read-only file system")
    }

    func testNoNewPrivilegesBlocksSetuid() {
        b.process["user"] = ["uid": 1000, "gid": 1000]
        b.process["noNewPrivileges"] = true
        b.args(["/bin/skiff-payload-suid", "id"])
        XCTAssertEqual(b.run().values["euid"], "1000", "setuid bit must be ignored with no_new_privs")
        b.process["noNewPrivileges"] = false
        XCTAssertEqual(b.run("c2").values["euid"], "0", "without no_new_privs the setuid bit applies")
    }

    func testOnlyStdioAndPreservedFdsReachTheProcess() {
        b.payload("fds")
        XCTAssertEqual(b.run().values["fds"], "0,1,2")
        try? b.write()
        let r = Cmd.run(
            "/bin/sh",
            [
                "-c", "exec 3</etc/hostname 4</etc/hostname; exec \"$0\" --root \"$1\" run --preserve-fds 1 --bundle \"$2\" c2",
                Env.skiff, b.stateRoot, b.dir
            ])
        XCTAssertEqual(r.values["fds"], "0,1,2,3", r.stderr)
    }

    func testListenFdsArePassedAndAdvertised() {
        b.payload("fds", "env")
        try? b.write()
        // LISTEN_PID is the pid skiff runs as ($$, kept by exec), as sd_listen_fds wants it.
        var r = Cmd.run(
            "/bin/sh",
            [
                "-c", "exec 3</etc/hostname; LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" --root \"$1\" run --bundle \"$2\" c1",
                Env.skiff, b.stateRoot, b.dir
            ])
        XCTAssertEqual(r.values["fds"], "0,1,2,3", r.stderr)
        XCTAssertTrue(r.stdout.contains("env=LISTEN_FDS=1"))
        XCTAssertTrue(r.stdout.contains("env=LISTEN_PID=1"))
        // Inherited from an activated ancestor (another LISTEN_PID, or none): not ours. The fd
        // here is a host directory, which would let the container walk out to the host's root.
        for pid in ["999999", ""] {
            r = Cmd.run(
                "/bin/sh",
                [
                    "-c", "exec 3</etc; LISTEN_FDS=1 LISTEN_PID=\(pid) exec \"$0\" --root \"$1\" run --bundle \"$2\" c2",
                    Env.skiff, b.stateRoot, b.dir
                ])
            XCTAssertEqual(r.values["fds"], "0,1,2", "LISTEN_PID=\(pid): " + r.stdout + r.stderr)
            XCTAssertFalse(r.stdout.contains("env=LISTEN_FDS"), r.stdout)
        }
    }

    func testSysctlInOwnNetworkNamespace() {
        b.linux["sysctl"] = ["net.ipv4.ip_forward": "1"]
        b.payload("cat", "/proc/sys/net/ipv4/ip_forward", "write", "/proc/sys/net/ipv4/ip_forward")
        let r = b.run()
        XCTAssertTrue(r.stdout.hasPrefix("1\n"), r.stdout + r.stderr)
        XCTAssertEqual(r.values["write./proc/sys/net/ipv4/ip_forward"], "error:Read-only file system", "readonlyPaths still apply")
    }

    func testTimeNamespaceOffsets() {
        b.addNamespace("time")
        b.linux["timeOffsets"] = ["boottime": ["secs": 864000, "nanosecs": 0]]
        b.payload("cat", "/proc/uptime")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        let uptime = Double(r.stdout.split(separator: " ").first ?? "") ?? 0
        XCTAssertGreaterThan(uptime, 864000)
    }

    func testJoinNamespacesByPath() throws {
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "a"]).code, 0)
        let pid = try XCTUnwrap(stateOf("a")["pid"] as? Int)
        let other = try TestBundle()
        defer { other.cleanup() }
        other.addNamespace("network", path: "/proc/\(pid)/ns/net")
        other.addNamespace("uts", path: "/proc/\(pid)/ns/uts")
        other.config["hostname"] = nil
        other.payload("ns")
        let r = other.run("b")
        XCTAssertEqual(r.code, 0, r.stderr)
        let inA = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
        XCTAssertEqual(r.values["ns.net"], inA)
        XCTAssertNotEqual(r.values["ns.pid"], try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid"))
    }

    func testNestedCgroupPathIsRemovedUpToWhatCreateMade() throws {
        guard let cgroot = Host.cgroupRoot else { throw XCTSkip("no cgroup2 mount on this host") }
        let top = (b.linux["cgroupsPath"] as! String)
        b.linux["cgroupsPath"] = top + "/a/b"
        b.payload("exit", "0")
        XCTAssertEqual(b.run().code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cgroot + top), "parents created by create must go too")
    }

    func testSystemdCgroupPathFormIsMappedToCgroupfs() throws {
        guard let cgroot = Host.cgroupRoot else { throw XCTSkip("no cgroup2 mount on this host") }
        let name = "skifftest" + String((b.linux["cgroupsPath"] as! String).suffix(8))
        b.linux["cgroupsPath"] = "\(name).slice:skiff:c1"
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"], extraGlobal: ["--systemd-cgroup"]).code, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cgroot + "/\(name).slice/skiff-c1.scope"))
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cgroot + "/\(name).slice"))
        // Without --systemd-cgroup the same string is refused with a hint.
        let r = b.rt(["create", "--bundle", b.dir, "c2"])
        XCTAssertTrue(r.stderr.contains("--systemd-cgroup"), r.stderr)
    }

    func testCgroupIsCreatedAndRemoved() throws {
        guard let cgroot = Host.cgroupRoot else { throw XCTSkip("no cgroup2 mount on this host") }
        let path = b.linux["cgroupsPath"] as! String
        b.addNamespace("cgroup")
        b.payload("cat", "/proc/self/cgroup", "sleep", "30")
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0)
        let pid = try XCTUnwrap(stateOf("c1")["pid"] as? Int)
        let procs = try String(contentsOfFile: cgroot + path + "/cgroup.procs", encoding: .utf8)
        XCTAssertTrue(procs.split(separator: "\n").contains(Substring(String(pid))))
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cgroot + path))
    }

    func testMountTargetSymlinkCannotEscapeRootfs() throws {
        // A private rootfs with /evil -> /../../../<host dir>; mounting on /evil/x must stay inside.
        let priv = b.base + "/rootfs"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, priv]).code, 0)
        let hostDir = b.base + "/host-target"
        try FileManager.default.createDirectory(atPath: hostDir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: priv + "/evil", withDestinationPath: "../../../../../../.." + hostDir)
        b.config["root"] = ["path": priv, "readonly": true]
        b.addMount(["destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"])
        b.payload("write", "/evil/x/file")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["write./evil/x/file"], "ok")
        XCTAssertFalse(FileManager.default.fileExists(atPath: hostDir + "/x"), "mount target escaped the rootfs")
        XCTAssertTrue(FileManager.default.fileExists(atPath: priv + hostDir + "/x"))
    }

    func testTwoContainersAtOnce() throws {
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "one"]).code, 0)
        b.linux["cgroupsPath"] = (b.linux["cgroupsPath"] as! String) + "-two"
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "two"]).code, 0)
        let list = b.rt(["list", "--format", "json"])
        let arr = try JSONSerialization.jsonObject(with: list.stdout.data(using: .utf8)!) as! [[String: Any]]
        XCTAssertEqual(Set(arr.map { $0["id"] as! String }), ["one", "two"])
        XCTAssertEqual(Set(arr.map { $0["status"] as! String }), ["running"])
        XCTAssertEqual(b.rt(["kill", "one", "KILL"]).code, 0)
        XCTAssertEqual(b.rt(["delete", "--force", "one"]).code, 0)
        XCTAssertEqual(try stateOf("two")["status"] as? String, "running")
    }

    func stateOf(_ id: String) throws -> [String: Any] {
        let r = b.rt(["state", id])
        XCTAssertEqual(r.code, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: r.stdout.data(using: .utf8)!) as! [String: Any]
    }
}

/// The example configs in runtime-spec/examples run for real.
final class ExampleConfigTests: XCTestCase {
    func run(example: String) throws -> CmdResult {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let data = try Data(contentsOf: URL(fileURLWithPath: Env.packageRoot + "/runtime-spec/examples/\(example).json"))
        b.config = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var root = b.config["root"] as! [String: Any]
        root["path"] = Env.rootfs
        b.config["root"] = root
        b.linux["cgroupsPath"] = "/skiff-test-ex-\(UUID().uuidString.prefix(8))"
        return b.run()
    }

    func testMinimal() throws {
        let r = try run(example: "minimal")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["uid"], "0")
    }

    func testUserns() throws {
        let r = try run(example: "userns")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertNotEqual(r.values["ns.user"], Host.ns("user"))
    }

    func testFull() throws {
        let r = try run(example: "full")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["uid"], "1000")
        XCTAssertEqual(r.values["groups"], "5")
        XCTAssertEqual(r.values["capamb"], "0000000000000020")
        XCTAssertEqual(r.values["RLIMIT_NOFILE"], "512:1024")
    }

    /// runtime-spec: a capability that cannot be granted is logged as a warning and left out.
    func testUnknownCapabilityIsAWarning() throws {
        let r = try run(example: "unknown-capability")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("ignoring unknown or unavailable capabilities: [CAP_FLY]"), r.stderr)
    }
}

/// The cgroup v2 device controller (an eBPF program attached to the container's cgroup).
final class DeviceCgroupTests: XCTestCase {
    func run(resources: [[String: Any]]?) throws -> CmdResult {
        try Env.requireRoot()
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 hierarchy") }
        let b = try TestBundle()
        defer { b.cleanup() }
        var caps = b.process["capabilities"] as! [String: Any]
        for set in ["bounding", "effective", "permitted"] { caps[set] = (caps[set] as! [String]) + ["CAP_MKNOD"] }
        b.process["capabilities"] = caps
        b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs"])
        b.linux["resources"] = resources.map { ["devices": $0] }
        // fuse (10:229) opens for root; reading it without a mount gives EIO, not EPERM.
        b.args(["/bin/sh", "-c", "echo x > /dev/null && echo null=ok; mknod /tmp/fuse c 10 229 && echo mknod=ok; head -c 1 /tmp/fuse 2>&1; true"])
        return b.run()
    }

    func testDenyAllStillAllowsTheDefaultDevicesAndMknod() throws {
        let r = try run(resources: [["allow": false, "access": "rwm"]])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("null=ok"), r.stdout)
        XCTAssertTrue(r.stdout.contains("mknod=ok"), "mknod of any char device stays allowed (runc's defaults)")
        XCTAssertTrue(r.stdout.contains("Operation not permitted"), "opening a non-default device is denied: \(r.stdout)")
    }

    func testLaterAllowRuleWins() throws {
        let r = try run(resources: [["allow": false, "access": "rwm"], ["allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"]])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("Operation not permitted"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Input/output error"), r.stdout)
    }

    func testReadOnlyRuleDeniesWrite() throws {
        try Env.requireRoot()
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 hierarchy") }
        let b = try TestBundle()
        defer { b.cleanup() }
        b.linux["resources"] = ["devices": [["allow": false, "access": "rwm"], ["allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"]]]
        b.linux["devices"] = [["type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666]]
        // fuse without a mount: an allowed read fails with EIO, a denied open with EPERM.
        b.args(["/bin/sh", "-c", "head -c 1 /dev/fuse 2>&1; echo x 2>&1 > /dev/fuse"])
        let r = b.run()
        XCTAssertTrue(r.stdout.contains("Input/output error"), "read allowed: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("Operation not permitted"), "write denied: \(r.stdout)")
    }

    /// Without any linux.resources the device program is still there (as in runc): only the
    /// default nodes are usable, not a node that linux.devices creates.
    func testNoResourcesStillFiltersDevices() throws {
        try Env.requireRoot()
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 hierarchy") }
        var runtimes = [Env.skiff]
        if let runc = Env.which("runc") { runtimes.append(runc) } else { print("runc not installed: comparison skipped") }
        for rt in runtimes {
            let b = try TestBundle(runtime: rt)
            defer { b.cleanup() }
            b.linux["resources"] = nil
            b.linux["devices"] = [["type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666]]
            b.args(["/bin/sh", "-c", "head -c 1 /dev/fuse 2>&1; echo x > /dev/null && echo null-ok"])
            let r = b.run()
            XCTAssertTrue(r.stdout.contains("Operation not permitted") && r.stdout.contains("null-ok"), "\(rt): \(r.stdout) \(r.stderr)")
        }
    }

    /// A node listed in linux.devices is created, not allowed: under a deny-all
    /// linux.resources.devices the container cannot open it until a rule allows it. The same
    /// against runc. (Before the fix skiff allowed every linux.devices entry, /dev/kmsg too.)
    func testCreatingADeviceDoesNotAllowIt() throws {
        try Env.requireRoot()
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 hierarchy") }
        var runtimes = [Env.skiff]
        if let runc = Env.which("runc") { runtimes.append(runc) } else { print("runc not installed: comparison skipped") }
        for rt in runtimes {
            for (allow, expect) in [(false, "Operation not permitted"), (true, "Input/output error")] {
                let b = try TestBundle(runtime: rt)
                defer { b.cleanup() }
                var rules: [[String: Any]] = [["allow": false, "access": "rwm"]]
                if allow { rules.append(["allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"]) }
                b.linux["resources"] = ["devices": rules]
                b.linux["devices"] = [["type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666]]
                b.args(["/bin/sh", "-c", "head -c 1 /dev/fuse 2>&1; true"])
                let r = b.run()
                XCTAssertEqual(r.code, 0, "\(rt): \(r.stderr)")
                XCTAssertTrue(r.stdout.contains(expect), "\(rt), allow rule \(allow): \(r.stdout)")
            }
        }
    }
}

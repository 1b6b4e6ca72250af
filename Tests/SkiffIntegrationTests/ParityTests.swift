import Foundation
import XCTest

/// skiff against Debian's runc, one config at a time: both run it (in the same pure cgroup v2
/// view of the host, see TestBundle.pureCgroupV2View) and what a caller can observe must match:
/// exit codes, output, state JSON, what the container sees in /proc, mountinfo and /dev. Where
/// runc contradicts the runtime spec, skiff follows the spec and the test says so (and
/// runtime-spec/support.json records it).
final class ParityTests: XCTestCase {
    var runc: String!
    var cleanups: [() -> Void] = []

    override func setUpWithError() throws {
        try Env.requireRoot()
        guard let r = Env.which("runc") else { throw XCTSkip("runc is not installed (apt-get install runc)") }
        runc = r
    }

    override func tearDown() { cleanups.reversed().forEach { $0() } }

    /// A bundle for `runtime` in the pure v2 view, configured by `configure`, cleaned up at the end.
    func bundle(_ runtime: String, _ configure: (TestBundle) throws -> Void) throws -> TestBundle {
        let b = try TestBundle(runtime: runtime)
        b.pureCgroupV2View = true
        try configure(b)
        try b.write()
        cleanups.append { b.cleanup() }
        return b
    }

    /// `run` of the same config under both runtimes.
    func runBoth(_ configure: (TestBundle) throws -> Void) throws -> (skiff: CmdResult, runc: CmdResult) {
        let s = try bundle(Env.skiff, configure).run("p1")
        let r = try bundle(runc, configure).run("p1")
        return (s, r)
    }

    /// Exit code and output equal; stderr only where asked (runc's logrus lines differ in form).
    func assertSame(_ p: (skiff: CmdResult, runc: CmdResult), _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(p.skiff.code, p.runc.code, "\(what): exit codes; skiff: \(p.skiff.stderr) runc: \(p.runc.stderr)", file: file, line: line)
        XCTAssertEqual(p.skiff.stdout, p.runc.stdout, "\(what): output", file: file, line: line)
    }

    // MARK: what the container sees

    /// The default config: mounts and their options, /dev (nodes, modes, owners, symlinks),
    /// capabilities, no_new_privs, seccomp, rlimits, umask, ids, cgroup, oom score, loopback.
    func testDefaultContainerLooksTheSame() throws {
        let script = """
            cut -d' ' -f4- /proc/self/mountinfo | sed 's/ shared:[0-9]*//; s/ master:[0-9]*//'
            find /dev | sort | while read f; do stat -c '%n %F %a %u %g %t %T %N' "$f"; done
            grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/self/status
            ulimit -a; umask; hostname; id; cat /proc/self/cgroup /proc/self/oom_score_adj
            ip -o link | cut -d' ' -f2,3
            """
        assertSame(try runBoth { $0.args(["/bin/sh", "-c", script]) }, "default container")
    }

    /// A read-only tmpfs /dev is filled first and made read-only at the end (runc's order:
    /// masks over a read-only /dev are read-only too).
    func testReadOnlyDev() throws {
        let p = try runBoth { b in
            b.config["mounts"] = (b.config["mounts"] as! [[String: Any]]).map { m in
                var m = m
                if m["destination"] as? String == "/dev" { m["options"] = (m["options"] as? [String] ?? []) + ["ro"] }
                return m
            }
            b.args([
                "/bin/sh", "-c",
                "cut -d' ' -f4- /proc/self/mountinfo | sed 's/ shared:[0-9]*//; s/ master:[0-9]*//'; ls /dev /dev/pts; touch /dev/x 2>&1 | cut -d: -f3"
            ])
        }
        assertSame(p, "read-only /dev")
        XCTAssertEqual(p.skiff.code, 0, p.skiff.stderr)
    }

    /// rootfsPropagation: the root mount's propagation as runc leaves it. `unbindable` is where
    /// runc 1.1 fails (it makes / unbindable before binding the rootfs onto itself, EINVAL);
    /// skiff applies it after the bind, as the spec asks, and the root is unbindable.
    func testRootfsPropagation() throws {
        // The root mount's optional fields (shared:N, master:N, unbindable), numbers dropped.
        let show = ["/bin/sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo | cut -d' ' -f7- | sed 's/[0-9][0-9]*//g'"]
        for prop in ["slave", "rslave", "private", "rprivate"] {
            let p = try runBoth { b in
                b.linux["rootfsPropagation"] = prop; b.args(show)
            }
            assertSame(p, "rootfsPropagation \(prop)")
            XCTAssertEqual(p.skiff.code, 0, "\(prop): \(p.skiff.stderr)")
        }
        // shared: runc 1.1 leaves the root private (it makes the rootfs's parent private for
        // pivot_root and never applies the request afterwards); the spec asks for a shared root,
        // which is what Kubernetes' Bidirectional propagation builds on. skiff's root is shared.
        for prop in ["shared", "rshared"] {
            let p = try runBoth { b in
                b.linux["rootfsPropagation"] = prop; b.args(show)
            }
            XCTAssertEqual([p.skiff.code, p.runc.code], [0, 0], p.skiff.stderr + p.runc.stderr)
            XCTAssertTrue(p.skiff.stdout.hasPrefix("shared:"), p.skiff.stdout)
            XCTAssertFalse(p.runc.stdout.hasPrefix("shared:"), p.runc.stdout)
        }
        // unbindable and runbindable: runc 1.1 fails both (above), crun 1.8 runbindable (its masks
        // are binds from an unbindable /dev). skiff applies them after every bind, with the
        // default read-only and masked paths in place.
        for (i, prop) in ["unbindable", "runbindable"].enumerated() {
            let b = try bundle(Env.skiff) { b in
                b.linux["rootfsPropagation"] = prop; b.args(show)
            }
            let s = b.run("u\(i)")
            XCTAssertEqual(s.code, 0, "\(prop): \(s.stderr)")
            XCTAssertTrue(s.stdout.contains("unbindable"), "\(prop): \(s.stdout)")
            XCTAssertFalse((b.linux["readonlyPaths"] as? [String] ?? []).isEmpty)
            XCTAssertFalse((b.linux["maskedPaths"] as? [String] ?? []).isEmpty)
        }
    }

    /// `ro` on an rbind makes the top read-only and leaves submounts alone; `rro` makes them all
    /// read-only (mount_setattr AT_RECURSIVE).
    func testRecursiveReadOnly() throws {
        let vol = NSTemporaryDirectory() + "skiff-rro-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: vol + "/sub", withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "tmpfs", vol + "/sub"]).code, 0)
        cleanups.append {
            Cmd.run("/bin/umount", ["-l", vol + "/sub"]); try? FileManager.default.removeItem(atPath: vol)
        }
        for opt in ["ro", "rro"] {
            let p = try runBoth { b in
                b.addMount(["destination": "/mnt", "type": "bind", "source": vol, "options": ["rbind", opt]])
                b.args(["/bin/sh", "-c", "touch /mnt/top 2>&1 | cut -d: -f3; touch /mnt/sub/x 2>&1 | cut -d: -f3; echo done"])
            }
            assertSame(p, opt)
            XCTAssertEqual(p.skiff.stdout.components(separatedBy: "Read-only").count - 1, opt == "ro" ? 1 : 2, "\(opt): \(p.skiff.stdout)")
        }
    }

    /// A bind source only root can reach (a 0700 directory), in a user namespace mapping root
    /// elsewhere: both open it before the user namespace exists.
    func testBindSourceOnlyTheCallerCanReach() throws {
        let dir = NSTemporaryDirectory() + "skiff-priv-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/inner", withIntermediateDirectories: true)
        try "only-root".write(toFile: dir + "/inner/f", atomically: true, encoding: .utf8)
        chmod(dir, 0o700)
        cleanups.append { try? FileManager.default.removeItem(atPath: dir) }
        let p = try runBoth { b in
            b.addNamespace("user")
            b.linux["uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
            b.linux["gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
            b.config["mounts"] = (b.config["mounts"] as! [[String: Any]]).filter { !["/sys", "/sys/fs/cgroup"].contains($0["destination"] as? String) }
            b.addMount(["destination": "/mnt", "type": "bind", "source": dir + "/inner", "options": ["rbind", "ro"]])
            b.args(["/bin/sh", "-c", "cat /mnt/f; id"])
        }
        assertSame(p, "0700 bind source in a user namespace")
        XCTAssertTrue(p.skiff.stdout.hasPrefix("only-root"), p.skiff.stdout + p.skiff.stderr)
    }

    /// A cwd only root can search still works for a non-root process user (entered before the
    /// user switch), and a missing cwd is created.
    func testCwdEnteredWithPrivilegesAndCreated() throws {
        for cwd in ["/root", "/does/not/exist/yet"] {
            let p = try runBoth { b in
                b.addMount(["destination": "/root", "type": "tmpfs", "source": "tmpfs", "options": ["mode=0700"]])
                b.process["cwd"] = cwd
                b.process["user"] = ["uid": 1000, "gid": 1000]
                b.config["root"] = ["path": b.base + "/rootfs", "readonly": false]
                XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, b.base + "/rootfs"]).code, 0)
                b.args(["/bin/sh", "-c", "pwd; id -u"])
            }
            assertSame(p, "cwd \(cwd)")
            XCTAssertEqual(p.skiff.stdout, "\(cwd)\n1000\n")
        }
    }

    /// A terminal's slave belongs to the process user and the tty group (devpts gid=5), 0620.
    func testTerminalOwner() throws {
        guard let script = Env.which("script") else { throw XCTSkip("script(1) is not installed") }
        var out: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { b in
                b.process["terminal"] = true
                b.process["user"] = ["uid": 1000, "gid": 1000]
                b.args(["/bin/sh", "-c", "stat -c '%u %g %a' $(readlink /proc/self/fd/0)"])
            }
            let (exe, argv) = Host.inPureCgroupV2View([rt, "--root", b.stateRoot, "run", "t1"]) ?? (rt, ["--root", b.stateRoot, "run", "t1"])
            let line = ([exe] + argv).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            let r = Cmd.run(script, ["-qec", line, "/dev/null"], cwd: b.dir)
            out.append(r.stdout.replacingOccurrences(of: "\0", with: "").replacingOccurrences(of: "^@", with: "").replacingOccurrences(of: "\r", with: ""))
        }
        XCTAssertEqual(out[0], out[1])
        XCTAssertEqual(out[0].trimmingCharacters(in: .whitespacesAndNewlines), "1000 5 620")
    }

    /// createContainer hooks run in the container's rootfs (runc's cwd for them).
    func testCreateContainerHookWorkingDirectory() throws {
        var cwds: [String] = []
        for rt in [Env.skiff, runc!] {
            let log = NSTemporaryDirectory() + "skiff-hookcwd-\(UUID().uuidString.prefix(8))"
            cleanups.append { unlink(log) }
            let r = try bundle(rt) { b in
                b.config["hooks"] = ["createContainer": [["path": "/bin/sh", "args": ["sh", "-c", "pwd > \(log)"]]]]
                b.args(["/bin/true"])
            }.run("h1")
            XCTAssertEqual(r.code, 0, r.stderr)
            cwds.append((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        XCTAssertEqual(cwds[0], cwds[1])
        XCTAssertEqual(cwds[0], Env.rootfs + "\n")
    }

    /// startContainer hooks run under the container's seccomp filter: a hook making a syscall
    /// the profile refuses fails, in both (the hook's mkdir gets EPERM) and the container ends.
    /// The spec says a failing startContainer hook is an error of `start`: skiff exits 1; runc
    /// 1.1 prints the error and exits 0 (recorded in support.json).
    func testStartContainerHookRunsUnderSeccomp() throws {
        var codes: [Int32] = []
        var errors: [Bool] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { b in
                b.linux["seccomp"] = [
                    "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"]]
                ]
                b.addMount(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs"])
                let out = b.base + "/out"
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                b.addMount(["destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]])
                b.config["hooks"] = [
                    "startContainer": [["path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/by-hook 2>/out/err; r=$?; echo $r > /out/rc; exit $r"]]]
                ]
                b.args(["/bin/true"])
            }
            let c = b.rt(["create", "--bundle", b.dir, "s1"])
            XCTAssertEqual(c.code, 0, "\(rt): \(c.stderr)")
            let st = b.rt(["start", "s1"])
            codes.append(st.code)
            errors.append(((try? String(contentsOfFile: b.base + "/out/err", encoding: .utf8)) ?? "").contains("Operation not permitted"))
            var status = ""
            for _ in 0..<100 {
                status = ((try? JSONSerialization.jsonObject(with: Data(b.rt(["state", "s1"]).stdout.utf8))) as? [String: Any])?["status"] as? String ?? ""
                if status == "stopped" { break }
                usleep(10_000)
            }
            XCTAssertEqual(status, "stopped", rt)
        }
        XCTAssertEqual(errors, [true, true], "the hook's mkdir was refused by the filter in both")
        XCTAssertEqual(codes, [1, 0])
    }

    /// Seccomp and device rules runc accepts: two conditions on one argument (ORed), unknown
    /// access letters (ignored with a warning).
    func testSeccompAndDeviceRulesRuncAccepts() throws {
        let p = try runBoth { b in
            b.linux["seccomp"] = [
                "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    [
                        "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                        "args": [
                            ["index": 0, "value": 8, "op": "SCMP_CMP_EQ"],
                            ["index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"]
                        ]
                    ]
                ]
            ]
            b.linux["resources"] = ["devices": [["allow": false, "access": "rwa"], ["allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"]]]
            b.args(["/bin/sh", "-c", "linux64 true && echo zero-ok; linux32 true 2>/dev/null || echo eight-denied"])
        }
        assertSame(p, "seccomp OR, device access rwa")
        XCTAssertEqual(p.skiff.stdout, "zero-ok\neight-denied\n")
    }

    /// A cgroupsPath naming a cgroup that already has processes: both warn and go on.
    func testExistingCgroupWithProcesses() throws {
        var statuses: [Int32] = []
        for rt in [Env.skiff, runc!] {
            let first = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(first.rt(["run", "-d", "--bundle", first.dir, "a1"]).code, 0)
            let second = try bundle(rt) { b in
                b.linux["cgroupsPath"] = first.linux["cgroupsPath"]; b.cgroupOwnedElsewhere = true; b.args(["/bin/true"])
            }
            let r = second.run("a2")
            statuses.append(r.code)
            XCTAssertTrue(r.stderr.contains("cgroup is not empty"), "\(rt): \(r.stderr)")
        }
        XCTAssertEqual(statuses, [0, 0])
        // The processes may be in a cgroup below it (kill --all and the device program reach
        // them there too): runc counts the whole subtree; skiff counted only the cgroup's own.
        guard let root = Host.cgroupRoot else { return }
        let parent = "/skiff-test-sub-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: root + parent + "/svc", withIntermediateDirectories: true)
        let sleeper = Background(["/bin/sleep", "30"])
        defer {
            sleeper.stop(SIGKILL)
            rmdir(root + parent + "/svc")
            rmdir(root + parent)
        }
        try "\(sleeper.pid)".write(toFile: root + parent + "/svc/cgroup.procs", atomically: false, encoding: .utf8)
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { b in
                b.linux["cgroupsPath"] = parent; b.cgroupOwnedElsewhere = true; b.args(["/bin/true"])
            }
            let r = b.run("a3")
            XCTAssertEqual(r.code, 0, "\(rt): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("cgroup is not empty: 1 process(es) found"), "\(rt): \(r.stderr)")
            XCTAssertEqual(kill(sleeper.pid, 0), 0, "\(rt): the process in the child cgroup is left alone")
        }
    }

    /// HOME: a process whose environment has none (or an empty one) gets its uid's home from the
    /// container's /etc/passwd, else "/"; one that has it keeps it. skiff used to leave it unset.
    func testHomeFromTheContainersPasswd() throws {
        var seen: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { b in
                b.args(["/bin/sleep", "30"])
                b.process["env"] = ["PATH=/bin:/usr/bin", "HOME="]
            }
            XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "h1"]).code, 0, rt)
            var out: [String] = []
            for extra in [[], ["-u", "1000"], ["-u", "4242"], ["-e", "HOME=/mine"]] {
                let r = b.rt(["exec"] + extra + ["h1", "/bin/sh", "-c", "echo \"$HOME\"; env | grep -c ^HOME="])
                out.append("\(extra): \(r.code) \(r.stdout)")
            }
            XCTAssertEqual(b.rt(["kill", "h1", "KILL"]).code, 0)
            // The init too, without any HOME in its environment.
            let r = try bundle(rt) { b in
                b.args(["/bin/sh", "-c", "echo $HOME"])
                b.process["env"] = ["PATH=/bin:/usr/bin"]
            }.run("h2")
            out.append("init: \(r.code) \(r.stdout)")
            seen.append(out.joined(separator: "\n"))
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertTrue(seen[0].contains("[]: 0 /root\n1\n") && seen[0].contains("init: 0 /root\n"), seen[0])
    }

    /// exec --cap adds to the bounding, effective and permitted sets, not the inheritable one
    /// (CVE-2022-29162: runc ≥ 1.1.2), and ambient only where the config has inheritable caps.
    /// A capability nobody knows is a warning and is left out (runtime-spec; runc and crun):
    /// in the config, or given to exec --cap (also in another spelling).
    func testExecCapAndUnknownCapabilities() throws {
        var seen: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { b in
                b.args(["/bin/sleep", "30"])
                var caps = b.process["capabilities"] as? [String: Any] ?? [:]
                caps["bounding"] = (caps["bounding"] as? [String] ?? []) + ["CAP_BOGUS"]
                b.process["capabilities"] = caps
            }
            let run = b.rt(["run", "-d", "--bundle", b.dir, "k1"])
            XCTAssertEqual(run.code, 0, "\(rt): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("ignoring unknown or unavailable capabilities: [CAP_BOGUS]"), "\(rt): \(run.stderr)")
            var out: [String] = []
            for cap in ["CAP_SYS_ADMIN", "CAP_BOGUS", "sys_admin"] {
                let r = b.rt(["exec", "--cap", cap, "k1", "/bin/sh", "-c", "grep ^Cap /proc/self/status"])
                out.append("\(cap): \(r.code) \(r.stdout)")
            }
            XCTAssertEqual(b.rt(["kill", "k1", "KILL"]).code, 0)
            seen.append(out.joined(separator: "\n"))
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertTrue(seen[0].contains("CapInh:\t0000000000000000\n"), seen[0])
    }

    /// pause: a created container can be paused (and shows paused, then created again after
    /// resume); a paused one cannot be paused again. runc's rules.
    func testPauseAndResumeStates() throws {
        var seen: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "q1"]).code, 0, rt)
            func status() -> String {
                let st = b.rt(["state", "q1"]).stdout
                return st.firstMatch(of: #/"status": "([a-z]+)"/#).map { String($0.1) } ?? st
            }
            var out: [String] = []
            for step in [["pause"], ["pause"], ["start"], ["resume"], ["start"], ["pause"], ["pause"], ["resume"], ["resume"]] {
                let r = b.rt(step + ["q1"])
                out.append("\(step[0]) \(r.code) \(status())")
                if rt == Env.skiff && step == ["start"] && r.code != 0 {
                    XCTAssertTrue(r.stderr.contains("cannot start a container in the paused state"), r.stderr)
                }
            }
            XCTAssertEqual(b.rt(["kill", "q1", "KILL"]).code, 0)
            seen.append(out.joined(separator: ", "))
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertEqual(
            seen[0],
            "pause 0 paused, pause 1 paused, start 1 paused, resume 0 created, start 0 running, pause 0 paused, pause 1 paused, resume 0 running, resume 1 running"
        )
    }

    /// events --stats: runc's shape on cgroup v2 (every section, Go's omitempty, its order). The
    /// numbers differ between two containers; the keys and the counts that do not must not.
    func testEventsStatsShape() throws {
        func shape(_ v: Any, _ path: String) -> [String] {
            if let d = v as? [String: Any] {
                return d.keys.sorted().flatMap { k in path == "data.cpu.usage" || path == "data.memory.raw" ? [path + "." + k] : shape(d[k]!, path + "." + k) }
            }
            if let a = v as? [Any] { return a.isEmpty ? [path + "[]"] : shape(a[0], path + "[0]") }
            return [path]
        }
        var seen: [[String]] = []
        var orders: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "e1"]).code, 0, rt)
            let r = b.rt(["events", "--stats", "e1"])
            XCTAssertEqual(r.code, 0, r.stderr)
            let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
            seen.append(shape(obj["data"] as Any, "data") + ["pids=\(((obj["data"] as? [String: Any])?["pids"] as? [String: Any])?["current"] ?? "none")"])
            // Top-level order of the data object, as printed.
            let data = r.stdout.range(of: "\"data\":").map { String(r.stdout[$0.upperBound...]) } ?? ""
            orders.append(
                data.matches(of: #/\{"([a-z_]+)":|,"([a-z_]+)":\{|,"(network_interfaces)":/#).prefix(8).map { String($0.1 ?? $0.2 ?? $0.3 ?? "") }.joined(
                    separator: ","))
            XCTAssertEqual(b.rt(["kill", "e1", "KILL"]).code, 0)
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertEqual(orders[0], orders[1])
    }

    /// --log-format json: logrus's record, the time in whole seconds (RFC 3339).
    func testJSONLogRecords() throws {
        var seen: [String] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/true"]) }
            let log = b.base + "/log.json"
            let r = b.rt(["kill", "nothere", "KILL"], extraGlobal: ["--log", log, "--log-format", "json"])
            XCTAssertNotEqual(r.code, 0)
            let line = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
            let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
            let time = obj["time"] as? String ?? ""
            seen.append("\(obj.keys.sorted()) \(obj["level"] ?? "") \(time.wholeMatch(of: #/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/#) != nil)")
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertEqual(seen[0], "[\"level\", \"msg\", \"time\"] error true")
    }

    // MARK: the command line

    /// exec stops at the container id (`exec ID ls -h /`), -h/--help per command, kill with
    /// signal 0 (also --all), a process.json without user, --rootless with a value.
    func testCommandLine() throws {
        var seen: [[String]] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(b.rt(["--rootless", "false", "run", "-d", "--bundle", b.dir, "c1"]).code, 0, rt)
            var out: [String] = []
            let ls = b.rt(["exec", "c1", "ls", "-h", "/"])
            out.append("\(ls.code) \(ls.stdout)")
            let help = b.rt(["exec", "--help"])
            out.append("\(help.code) \(help.stdout.contains("--cwd value")) \(help.stdout.contains("--cgroup value"))")
            out.append("\(b.rt(["kill", "c1", "0"]).code) \(b.rt(["kill", "--all", "c1", "0"]).code)")
            let process = b.base + "/p.json"
            try #"{"args":["/bin/sh","-c","id -u"],"cwd":"/","env":["PATH=/bin"]}"#.write(toFile: process, atomically: true, encoding: .utf8)
            let p = b.rt(["exec", "-p", process, "c1"])
            out.append("\(p.code) \(p.stdout)")
            out.append("\(b.rt(["kill", "c1", "KILL"]).code)")
            seen.append(out)
        }
        XCTAssertEqual(seen[0], seen[1])
        XCTAssertEqual(seen[0][2], "0 0")
        XCTAssertEqual(seen[0][3], "0 0\n")
    }

    /// state and list JSON: runc's fields in runc's order; --version's shape.
    func testStateListAndVersionShape() throws {
        func keys(_ json: String) -> [String] {
            // Top-level keys in order of appearance (JSONSerialization loses the order).
            json.split(separator: "\n").compactMap { l in
                let t = l.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix("\""), let end = t.dropFirst().firstIndex(of: "\"") else { return nil }
                return String(t[t.index(after: t.startIndex)..<end])
            }
        }
        var shapes: [[String]] = []
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0)
            let st = b.rt(["state", "c1"]).stdout
            let list = b.rt(["list", "--format", "json"]).stdout.replacingOccurrences(of: ",\"", with: ",\n\"")
            // Column names (the widths follow each bundle path's length; minimum 12 as Go's tabwriter).
            let header = b.rt(["list"]).stdout.split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertTrue(header.hasPrefix("ID          PID         STATUS      "), "\(rt): \(header)")
            let table = header.split(separator: " ").joined(separator: " ")
            shapes.append(keys(st) + ["|"] + keys(list.replacingOccurrences(of: "[{", with: "\n")) + ["|", table])
            XCTAssertEqual(b.rt(["kill", "c1", "KILL"]).code, 0)
        }
        XCTAssertEqual(shapes[0], shapes[1])
        let v = Cmd.run(Env.skiff, ["--version"]).stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
        XCTAssertEqual(v, ["skiff", "commit:", "spec:", "libseccomp:"])
    }

    // MARK: where skiff follows the spec (or has no runc to compare with)

    /// A config without a mount namespace inherits the runtime's (runtime-spec); the process is
    /// chroot'ed into the rootfs. runc 1.1 fails such a config (it needs /proc in the rootfs);
    /// masked paths, mounts or a read-only root there are refused with a reason.
    func testNoMountNamespace() throws {
        let b = try bundle(Env.skiff) { b in
            b.linux["namespaces"] = (b.linux["namespaces"] as! [[String: Any]]).filter { $0["type"] as? String != "mount" }
            b.linux["maskedPaths"] = nil; b.linux["readonlyPaths"] = nil
            b.config["mounts"] = []
            b.config["root"] = ["path": Env.rootfs, "readonly": false]
            b.args(["/bin/sh", "-c", "ls /bin/skiff-payload; readlink /proc/self/ns/mnt 2>/dev/null || echo no-proc"])
        }
        let r = b.run("n1")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("/bin/skiff-payload\n"), r.stdout)
        b.linux["maskedPaths"] = ["/proc/kcore"]
        XCTAssertTrue(b.run("n2").stderr.contains("without a private MNT namespace"))
    }

    /// The loopback interface of a new network namespace is up (runc and crun do this too).
    func testLoopbackIsUp() throws {
        let p = try runBoth { $0.args(["/bin/sh", "-c", "ip -o link show lo | grep -o 'LOOPBACK,UP'; ip -o addr show lo | grep -c 127.0.0.1"]) }
        assertSame(p, "lo")
        XCTAssertEqual(p.skiff.stdout, "LOOPBACK,UP\n1\n")
    }

    /// linux.netDevices (runtime-spec 1.2; runc 1.1 predates it): a veth end is moved in and
    /// renamed, and back with its host name on delete.
    func testNetDevicesMovedInAndBack() throws {
        let host = "skv" + String(UUID().uuidString.prefix(6)).lowercased()
        XCTAssertEqual(Cmd.run("/sbin/ip", ["link", "add", host, "type", "veth", "peer", "name", host + "p"]).code, 0)
        cleanups.append { Cmd.run("/sbin/ip", ["link", "del", host]) }
        let b = try bundle(Env.skiff) { b in
            b.linux["netDevices"] = [host: ["name": "eth7"]]
            b.args(["/bin/sh", "-c", "ip -o link show eth7 >/dev/null && echo eth7-here"])
        }
        let r = b.run("d1")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "eth7-here\n")
        XCTAssertEqual(Cmd.run("/sbin/ip", ["-o", "link", "show", host]).code, 0, "the device is back under its host name")
    }

    /// A frozen cgroup fails create with a reason instead of hanging (runc refuses it too).
    func testFrozenCgroupDoesNotHang() throws {
        guard let root = Host.cgroupRoot else { throw XCTSkip("no cgroup2 hierarchy") }
        let b = try bundle(Env.skiff) { $0.args(["/bin/true"]) }
        let cg = root + (b.linux["cgroupsPath"] as! String)
        try FileManager.default.createDirectory(atPath: cg, withIntermediateDirectories: true)
        cleanups.append { rmdir(cg) }
        try "1".write(toFile: cg + "/cgroup.freeze", atomically: false, encoding: .utf8)
        let t0 = Date()
        let r = b.rt(["run", "--bundle", b.dir, "f1"], timeout: 20)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("frozen"), r.stderr)
        XCTAssertEqual(b.rt(["list", "-q"]).stdout, "")
    }

    /// exec --cgroup SUB and CTRL:SUB put the process in an existing sub-cgroup; '..' and a
    /// missing one are refused.
    func testExecIntoASubCgroup() throws {
        guard let root = Host.cgroupRoot else { throw XCTSkip("no cgroup2 hierarchy") }
        let b = try bundle(Env.skiff) { $0.args(["/bin/sleep", "30"]) }
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "c1"]).code, 0)
        let cg = root + (b.linux["cgroupsPath"] as! String)
        XCTAssertEqual(mkdir(cg + "/sub", 0o755), 0)
        for arg in ["sub", "pids:sub"] {
            let r = b.rt(["exec", "--cgroup", arg, "c1", "/bin/cat", "/proc/self/cgroup"])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(r.stdout.hasSuffix("/sub\n"), r.stdout)
        }
        XCTAssertTrue(b.rt(["exec", "--cgroup", "../x", "c1", "/bin/true"]).stderr.contains("not a sub cgroup path"))
        XCTAssertTrue(b.rt(["exec", "--cgroup", "nope", "c1", "/bin/true"]).stderr.contains("no such file or directory"))
        XCTAssertEqual(b.rt(["kill", "c1", "KILL"]).code, 0)
        for _ in 0..<100
        where FileManager.default.fileExists(atPath: cg + "/sub/cgroup.procs")
            && !((try? String(contentsOfFile: cg + "/cgroup.procs", encoding: .utf8)) ?? "").isEmpty
        { usleep(10_000) }
        rmdir(cg + "/sub")
    }

    /// A terminal whose reader went away: run stops relaying, kills the container (its pid 1
    /// ignores SIGTERM) and ends with its exit code, instead of spinning on EPIPE forever.
    func testRunEndsWhenItsOutputIsGone() throws {
        let b = try bundle(Env.skiff) { b in
            b.process["terminal"] = true
            b.args(["/bin/sh", "-c", "trap '' TERM; while :; do echo spam; done"])
        }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&fa, fds[0])
        let args: [String] = [Env.skiff, "--root", b.stateRoot, "run", "--bundle", b.dir, "e1"]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, Env.skiff, &fa, nil, argv, environ), 0)
        argv.forEach { free($0) }
        posix_spawn_file_actions_destroy(&fa)
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 4096)
        XCTAssertGreaterThan(read(fds[0], &buf, buf.count), 0, "the container's output arrives")
        close(fds[0])  // the reader goes away
        var st: Int32 = 0
        var exited = false
        for _ in 0..<500 { if waitpid(pid, &st, WNOHANG) == pid { exited = true; break }; usleep(10_000) }
        if !exited { kill(pid, SIGKILL); waitpid(pid, &st, 0) }
        XCTAssertTrue(exited, "run kept going after its output was gone")
        XCTAssertEqual((st >> 8) & 0xff, 137, "the container's exit code (killed)")
    }

    /// Labels for LSMs this host does not run are refused before anything is made (runc fails
    /// too, later); linux.resources.network (cgroup v1 only) is a warning; checkpoint/restore
    /// answer with a reason.
    func testWhatThisHostCannotDo() throws {
        let b = try bundle(Env.skiff) { $0.args(["/bin/true"]) }
        if !FileManager.default.fileExists(atPath: "/sys/module/apparmor/parameters/enabled") {
            b.process["apparmorProfile"] = "docker-default"
            let r = b.run("l1")
            XCTAssertEqual(r.code, 1)
            XCTAssertTrue(r.stderr.contains("AppArmor is not enabled"), r.stderr)
            b.process["apparmorProfile"] = nil
        }
        if !FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce") {
            b.process["selinuxLabel"] = "system_u:system_r:container_t:s0"
            XCTAssertTrue(b.run("l2").stderr.contains("selinux is disabled"))
            b.process["selinuxLabel"] = nil
        }
        b.linux["resources"] = ["network": ["classID": 1]]
        let r = b.run("l3")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("linux.resources.network"), r.stderr)
        let c = b.rt(["checkpoint", "l3"])
        XCTAssertEqual(c.code, 1)
        XCTAssertTrue(c.stderr.contains("not supported"), c.stderr)
    }

    /// A NUL byte cuts a C string short, so `/bin/sh\u0000x` would run /bin/sh and a sysctl key
    /// would name another file. runc refuses each of these (Go's syscall layer answers EINVAL);
    /// so does skiff, before anything is made, naming the field. runc passes the hostname's bytes
    /// to sethostname as they are (the container reads "h"); skiff refuses that one too.
    func testNULBytesAreRefused() throws {
        let cases: [(String, (TestBundle) -> Void)] = [
            ("process.args[0]", { $0.args(["/bin/sh\u{0}x", "-c", "echo ran"]) }),
            ("process.env[1]", { $0.process["env"] = ["PATH=/bin", "A=b\u{0}c"] }),
            ("process.cwd", { $0.process["cwd"] = "/tmp\u{0}x" }),
            ("mounts[1].destination", { $0.addMount(["destination": "/tmp\u{0}y", "type": "tmpfs", "source": "tmpfs"]) }),
            ("mounts[1].source", { $0.addMount(["destination": "/mnt", "type": "bind", "source": "/tmp\u{0}y", "options": ["bind"]]) }),
            ("mounts[1].options[0]", { $0.addMount(["destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m\u{0}x"]]) }),
            ("linux.sysctl.net.ipv4.ip_forward", { $0.linux["sysctl"] = ["net.ipv4.ip_forward\u{0}x": "1"] }),
            ("linux.maskedPaths[0]", { $0.linux["maskedPaths"] = ["/proc/kcore\u{0}x"] }),
            ("hooks.prestart[0].path", { $0.config["hooks"] = ["prestart": [["path": "/bin/true\u{0}x"]]] }),
            ("hooks.prestart[0].args[1]", { $0.config["hooks"] = ["prestart": [["path": "/bin/true", "args": ["true", "a\u{0}b"]]]] }),
            ("hostname", { $0.config["hostname"] = "h\u{0}x" })
        ]
        for (field, edit) in cases {
            let configure = { (b: TestBundle) in
                b.args(["/bin/sh", "-c", "echo ran"])
                b.config["mounts"] = [["destination": "/proc", "type": "proc", "source": "proc"]]
                edit(b)
            }
            let s = try bundle(Env.skiff, configure)
            let r = try bundle(runc, configure).run("p1")
            if field == "hostname" {
                XCTAssertEqual(r.code, 0, r.stderr)
            } else {
                XCTAssertNotEqual(r.code, 0, "\(field): runc ran it: \(r.stdout)")
            }
            let k = s.run("p1")
            XCTAssertEqual(k.code, 1, "\(field): \(k.stdout) \(k.stderr)")
            XCTAssertEqual(k.stdout, "", field)
            XCTAssertTrue(k.stderr.contains("field \"\(field)") && k.stderr.contains("contains a NUL byte"), k.stderr)
            // Refused before anything is made.
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: s.stateRoot)) ?? [], [], field)
        }
        // exec's process.json, for both.
        for rt in [Env.skiff, runc!] {
            let c = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            XCTAssertEqual(c.rt(["run", "-d", "--bundle", c.dir, "e1"]).code, 0, rt)
            let process = c.base + "/p.json"
            try #"{"args":["/bin/sh\u0000x","-c","echo ran"],"cwd":"/","env":["PATH=/bin"]}"#.write(toFile: process, atomically: true, encoding: .utf8)
            let e = c.rt(["exec", "-p", process, "e1"])
            XCTAssertNotEqual(e.code, 0, "\(rt): \(e.stdout)")
            XCTAssertFalse(e.stdout.contains("ran"), rt)
            if rt == Env.skiff { XCTAssertTrue(e.stderr.contains("field \"args[0]\": contains a NUL byte"), e.stderr) }
            c.rt(["kill", "e1", "KILL"])
        }
    }

    /// A relative --root names a directory under the working directory (runc: filepath.Abs).
    func testRelativeRootIsUnderTheWorkingDirectory() throws {
        for rt in [Env.skiff, runc!] {
            let b = try bundle(rt) { $0.args(["/bin/sleep", "30"]) }
            func cmd(_ args: [String]) -> CmdResult {
                let argv = [rt, "--root", "rel/state"] + args
                let (exe, wrapped) = Host.inPureCgroupV2View(argv) ?? (argv[0], Array(argv.dropFirst()))
                return Cmd.run(exe, wrapped, cwd: b.base)
            }
            try FileManager.default.createDirectory(atPath: b.base + "/rel", withIntermediateDirectories: true)
            XCTAssertEqual(cmd(["run", "-d", "--bundle", b.dir, "r1"]).code, 0, rt)
            XCTAssertTrue(FileManager.default.fileExists(atPath: b.base + "/rel/state/r1/state.json"), rt)
            XCTAssertEqual(cmd(["list", "-q"]).stdout, "r1\n", rt)
            XCTAssertEqual(cmd(["delete", "--force", "r1"]).code, 0, rt)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "/rel/state/r1"), rt)
        }
        // A working directory that is gone: both fail rather than use another directory.
        let gone = try bundle(Env.skiff) { _ in }.base + "/gone"
        try FileManager.default.createDirectory(atPath: gone, withIntermediateDirectories: true)
        for rt in [Env.skiff, runc!] {
            let r = Cmd.sh("cd \(gone) && rmdir \(gone) && \(rt) --root rel-state list; echo \"rc=$?\"; mkdir -p \(gone)")
            XCTAssertTrue(r.stdout.contains("rc=1"), "\(rt): \(r.stdout) \(r.stderr)")
            if rt == Env.skiff { XCTAssertTrue(r.stderr.contains("getcwd for --root \"rel-state\": no such file or directory"), r.stderr) }
        }
    }
}

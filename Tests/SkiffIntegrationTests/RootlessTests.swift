import Foundation
import XCTest

/// `skiff` run by a real unprivileged user the test creates (and removes): a config from
/// `skiff spec --rootless`, state under $XDG_RUNTIME_DIR/skiff, id maps written by the runtime
/// (one range) or by newuidmap/newgidmap (several), no cgroup unless one is delegated, and the
/// verbs a caller uses. Compared with runc where runc runs here (it does, rootless).
final class RootlessTests: XCTestCase {
    var user = "", uid: uid_t = 0, gid: gid_t = 0
    var home = ""
    var delegated: String?
    let subStart = 400000

    override func setUpWithError() throws {
        try Env.requireRoot()
        guard Env.which("useradd") != nil, Env.which("userdel") != nil else { throw XCTSkip("needs useradd/userdel (passwd)") }
        guard Env.which("newuidmap") != nil else { throw XCTSkip("needs newuidmap/newgidmap (Debian: uidmap)") }
        user = "skiffrl" + String(UUID().uuidString.prefix(6)).lowercased()
        uid = uid_t.random(in: 62000...64999)
        while getpwuid(uid) != nil { uid = uid_t.random(in: 62000...64999) }
        // No home, no login; subordinate ranges of its own for the several-range case.
        let r = Cmd.run(Env.which("useradd")!, ["-M", "-s", "/usr/sbin/nologin", "-u", "\(uid)", "-K", "UID_MAX=65000", user])
        XCTAssertEqual(r.code, 0, r.stderr)
        guard let pw = getpwnam(user) else { throw XCTSkip("useradd made no user: \(r.stderr)") }
        gid = pw.pointee.pw_gid
        XCTAssertEqual(
            Cmd.run(
                Env.which("usermod")!,
                [
                    "--add-subuids", "\(subStart)-\(subStart + 65535)",
                    "--add-subgids", "\(subStart)-\(subStart + 65535)", user
                ]
            ).code, 0)
        home = "/tmp/skiff-rl-" + UUID().uuidString.prefix(8).lowercased()
        for d in [home, home + "/xdg", home + "/bundle"] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            chown(d, uid, gid)
        }
        chmod(home + "/xdg", 0o700)
    }

    override func tearDown() {
        guard !user.isEmpty else { return }
        for pid in Host.processes(owner: uid) { kill(pid, SIGKILL) }
        usleep(100_000)
        if let d = delegated { Cmd.run("/bin/sh", ["-c", "for c in $(find \(d) -depth -type d); do rmdir $c; done"]) }
        Cmd.run(Env.which("userdel")!, ["-f", user])  // -f: this host's pid 1 reaps late; a zombie counts as "in use"
        try? FileManager.default.removeItem(atPath: home)
        XCTAssertFalse((try? String(contentsOfFile: "/etc/subuid", encoding: .utf8))?.contains(user + ":") ?? false, "userdel took the ranges")
    }

    /// A command as the user, with its own XDG_RUNTIME_DIR; `cgroup`: started inside that cgroup.
    @discardableResult
    func asUser(_ argv: [String], cgroup: String? = nil, timeout: TimeInterval = 60) -> CmdResult {
        let drop =
            [
                "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "/usr/bin/env", "-i",
                "XDG_RUNTIME_DIR=\(home)/xdg", "HOME=\(home)", "USER=\(user)",
                "PATH=\((Env.shim as NSString).deletingLastPathComponent):/usr/sbin:/usr/bin:/sbin:/bin"
            ] + argv
        if let cgroup {
            let quoted = drop.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
            return Cmd.run("/bin/sh", ["-c", "echo $$ > \(cgroup)/cgroup.procs && exec \(quoted)"], timeout: timeout, cwd: home + "/bundle")
        }
        return Cmd.run(drop[0], Array(drop.dropFirst()), timeout: timeout, cwd: home + "/bundle")
    }

    /// `skiff spec --rootless` as the user, edited; the fixture rootfs read-only.
    func writeConfig(_ edit: (inout [String: Any]) -> Void) throws {
        unlink(home + "/bundle/config.json")
        let spec = asUser([Env.skiff, "spec", "--rootless"])
        XCTAssertEqual(spec.code, 0, spec.stderr)
        let path = home + "/bundle/config.json"
        var c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        c["root"] = ["path": Env.rootfs, "readonly": true]
        var p = c["process"] as! [String: Any]
        p["terminal"] = false
        c["process"] = p
        edit(&c)
        try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: path))
    }

    func setArgs(_ c: inout [String: Any], _ args: [String]) {
        var p = c["process"] as! [String: Any]
        p["args"] = args
        c["process"] = p
    }

    func setLinux(_ c: inout [String: Any], _ key: String, _ value: Any) {
        var l = c["linux"] as! [String: Any]
        l[key] = value
        c["linux"] = l
    }

    /// Run, exec, ps, kill (signal 0 and --all), state and delete, the state under
    /// $XDG_RUNTIME_DIR/skiff; the map is the user's own id alone, written by skiff itself.
    func testOneRangeRunAndTheVerbs() throws {
        try writeConfig { c in self.setArgs(&c, ["/bin/sh", "-c", "id -u; cat /proc/self/uid_map; echo ran"]) }
        var r = asUser([Env.skiff, "run", "r1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("0\n"), r.stdout)
        XCTAssertEqual(r.stdout.split(separator: "\n").dropFirst().first?.split(separator: " ").map(String.init), ["0", "\(uid)", "1"])
        XCTAssertTrue(r.stdout.contains("ran"))
        // runc, same bundle, same user: same output.
        if Env.which("runc") != nil {
            let rr = asUser(["runc", "run", "r1-runc"])
            XCTAssertEqual(rr.stdout, r.stdout, rr.stderr)
        }

        try writeConfig { c in self.setArgs(&c, ["/bin/sleep", "3061"]) }
        r = asUser([Env.skiff, "run", "-d", "r2"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/xdg/skiff/r2"), "state under $XDG_RUNTIME_DIR/skiff")
        r = asUser([Env.skiff, "exec", "r2", "/bin/sh", "-c", "echo exec $(id -u)"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "exec 0\n")
        // ps without a cgroup: the init and what it started.
        let bg = asUser(["/bin/sh", "-c", "\(Env.skiff) exec -d r2 /bin/sleep 3062 && sleep 0.3 && \(Env.skiff) ps r2"])
        XCTAssertEqual(bg.code, 0, bg.stderr)
        XCTAssertTrue(bg.stdout.contains("sleep 3061") && bg.stdout.contains("sleep 3062"), bg.stdout)
        XCTAssertEqual(asUser([Env.skiff, "kill", "r2", "0"]).code, 0)
        XCTAssertTrue(asUser([Env.skiff, "state", "r2"]).stdout.contains("\"running\""))
        r = asUser([Env.skiff, "pause", "r2"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("rootless without a delegated cgroup"), r.stderr)
        XCTAssertEqual(asUser([Env.skiff, "kill", "--all", "r2", "KILL"]).code, 0)
        for _ in 0..<100 where !asUser([Env.skiff, "state", "r2"]).stdout.contains("\"stopped\"") { usleep(20_000) }
        XCTAssertTrue(
            (Host.processes(mentioning: "sleep 3061") + Host.processes(mentioning: "sleep 3062")).filter { Host.processAlive($0) }.isEmpty,
            "--all took the exec'd process too")
        XCTAssertEqual(asUser([Env.skiff, "delete", "r2"]).code, 0)
        XCTAssertEqual(asUser([Env.skiff, "list", "-q"]).stdout, "")

        // What a rootless container cannot do is refused with the reason: an oomScoreAdj below
        // the caller's, a network sysctl without a network namespace of its own.
        try writeConfig { c in
            var p = c["process"] as! [String: Any]
            p["oomScoreAdj"] = -500
            c["process"] = p
        }
        r = asUser([Env.skiff, "run", "o1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("oom_score_adj") && r.stderr.contains("CAP_SYS_RESOURCE"), r.stderr)
        try writeConfig { c in self.setLinux(&c, "sysctl", ["net.ipv4.ip_forward": "1"]) }
        r = asUser([Env.skiff, "run", "o2"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("network namespace"), r.stderr)
        XCTAssertEqual(asUser([Env.skiff, "list", "-q"]).stdout, "", "nothing left")
        XCTAssertEqual(Host.processes(owner: uid).filter { Host.processAlive($0) }, [])
    }

    /// Container root is the user, ids 1..65535 its subordinate range: written by newuidmap and
    /// newgidmap. A range /etc/subuid does not give is refused by them, and skiff says so.
    func testSeveralRangesThroughNewuidmap() throws {
        let maps: [[String: Any]] = [["containerID": 0, "hostID": Int(uid), "size": 1], ["containerID": 1, "hostID": subStart, "size": 65536]]
        let gmaps: [[String: Any]] = [["containerID": 0, "hostID": Int(gid), "size": 1], ["containerID": 1, "hostID": subStart, "size": 65536]]
        try writeConfig { c in
            self.setLinux(&c, "uidMappings", maps)
            self.setLinux(&c, "gidMappings", gmaps)
            self.setArgs(&c, ["/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; echo ran"])
        }
        var r = asUser([Env.skiff, "run", "m1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertEqual(lines, ["0 \(uid) 1", "1 \(subStart) 65536", "0 \(gid) 1", "1 \(subStart) 65536", "ran"])

        try writeConfig { c in
            self.setLinux(&c, "uidMappings", [["containerID": 0, "hostID": Int(self.uid), "size": 1], ["containerID": 1, "hostID": 100, "size": 10]])
            self.setLinux(&c, "gidMappings", gmaps)
        }
        r = asUser([Env.skiff, "run", "m2"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("newuidmap") && r.stderr.contains("/etc/subuid"), r.stderr)
        XCTAssertEqual(asUser([Env.skiff, "list", "-q"]).stdout, "", "nothing left")
        XCTAssertEqual(Host.processes(owner: uid).filter { Host.processAlive($0) }, [])
    }

    /// Limits without a delegated cgroup: refused, saying how to delegate, nothing left. With one
    /// (a cgroup2 directory chowned to the user, the caller inside it, as a systemd user slice
    /// with Delegate=yes gives): the container's cgroup is made there, limits applied, pause and
    /// resume work, delete removes it.
    func testCgroupsOnlyWhereDelegated() throws {
        guard let root = Host.cgroupRoot else { throw XCTSkip("no cgroup2 hierarchy") }
        let controllers = (try? String(contentsOfFile: root + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
        // The one controller this hybrid host's v2 hierarchy has; pids on a pure v2 host.
        let (file, value) = controllers.contains("pids") ? ("pids.max", "64") : ("hugetlb.2MB.max", "0")
        let limit: [String: Any] = file == "pids.max" ? ["pids": ["limit": 64]] : ["hugepageLimits": [["pageSize": "2MB", "limit": 0]]]
        try writeConfig { c in
            self.setLinux(&c, "resources", limit)
            self.setArgs(&c, ["/bin/sleep", "3063"])
        }
        var r = asUser([Env.skiff, "run", "-d", "l1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("create cgroup") && r.stderr.contains("delegated"), r.stderr)
        XCTAssertEqual(asUser([Env.skiff, "list", "-q"]).stdout, "")

        let d = root + "/skiff-rl-" + UUID().uuidString.prefix(6).lowercased()
        delegated = d
        XCTAssertEqual(mkdir(d, 0o755), 0)
        XCTAssertEqual(mkdir(d + "/shell", 0o755), 0)
        for f in [d, d + "/cgroup.procs", d + "/cgroup.subtree_control", d + "/cgroup.threads", d + "/shell", d + "/shell/cgroup.procs"] {
            chown(f, uid, gid)
        }
        let name = String(d.dropFirst(root.count))
        try writeConfig { c in
            self.setLinux(&c, "resources", limit)
            self.setLinux(&c, "cgroupsPath", name + "/l1")
            self.setArgs(&c, ["/bin/sleep", "3063"])
        }
        r = asUser([Env.skiff, "run", "-d", "l1"], cgroup: d + "/shell")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual((try? String(contentsOfFile: d + "/l1/" + file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines), value)
        let procs = (try? String(contentsOfFile: d + "/l1/cgroup.procs", encoding: .utf8)) ?? ""
        XCTAssertEqual(procs.split(separator: "\n").count, 1, "the init is in the delegated cgroup")
        XCTAssertEqual(asUser([Env.skiff, "pause", "l1"]).code, 0)
        XCTAssertTrue(asUser([Env.skiff, "state", "l1"]).stdout.contains("\"paused\""))
        XCTAssertEqual(asUser([Env.skiff, "resume", "l1"]).code, 0)
        XCTAssertEqual(asUser([Env.skiff, "delete", "--force", "l1"]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d + "/l1"), "delete removed the cgroup")
    }
    /// podman 4.3 rootless (its own user namespace from /etc/subuid, overlay in it, no network)
    /// with skiff as its OCI runtime: run --rm with the exit code, run -d, exec, stop, rm.
    func testPodmanRootlessWithSkiff() throws {
        guard Env.which("podman") != nil else { throw XCTSkip("needs podman") }
        let image = home + "/img.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs, image]).code, 0)
        chmod(image, 0o644)
        let podman = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", Env.skiff]
        defer { asUser(podman + ["system", "reset", "-f"], timeout: 120) }
        var r = asUser(podman + ["load", "-i", image], timeout: 120)
        XCTAssertEqual(r.code, 0, r.stderr)
        r = asUser(podman + ["run", "--rm", "--network", "none", "docker.io/skiff/busybox:test", "/bin/sh", "-c", "echo hi $(id -u); exit 7"])
        XCTAssertEqual(r.code, 7, r.stderr)
        XCTAssertEqual(r.stdout, "hi 0\n")
        r = asUser(podman + ["run", "-d", "--name", "p1", "--network", "none", "docker.io/skiff/busybox:test", "/bin/sleep", "3067"])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = asUser(podman + ["exec", "p1", "/bin/sh", "-c", "echo in-exec $(cat /proc/self/uid_map)"])
        XCTAssertEqual(r.code, 0, r.stderr)
        // The user's own id, then the ranges /etc/subuid gives it (useradd adds one of its own).
        XCTAssertTrue(r.stdout.hasPrefix("in-exec 0 \(uid) 1 1 "), r.stdout)
        XCTAssertTrue(r.stdout.contains(" \(subStart) 65536"), r.stdout)
        XCTAssertEqual(asUser(podman + ["stop", "-t", "1", "p1"]).code, 0)
        XCTAssertEqual(asUser(podman + ["rm", "p1"]).code, 0)
        XCTAssertEqual(asUser(podman + ["ps", "-aq"]).stdout, "")
    }
    /// Rootless containerd: containerd 1.6 inside rootlesskit (--net=host, /etc and /run copied
    /// up, /run/containerd made anew as containerd-rootless.sh does), its root and state in the
    /// user's directories, driving containerd-shim-skiff-v2: run --rm with output and exit code,
    /// run -d, task exec, kill, rm. (runc's shim fails here: runc 1.1 cannot use the hybrid
    /// host's v1 controllers rootless.)
    func testContainerdInRootlesskitWithTheSkiffShim() throws {
        guard Env.which("rootlesskit") != nil, Env.which("containerd") != nil, Env.which("nsenter") != nil else {
            throw XCTSkip("needs rootlesskit, containerd and nsenter")
        }
        let image = home + "/img.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs, image]).code, 0)
        chmod(image, 0o644)
        let sock = home + "/xdg/containerd/containerd.sock"
        try """
        version = 2
        root = "\(home)/containerd-root"
        state = "\(home)/xdg/containerd"
        disabled_plugins = ["io.containerd.grpc.v1.cri"]
        [grpc]
          address = "\(sock)"
        """.write(toFile: home + "/containerd.toml", atomically: true, encoding: .utf8)
        let shimDir = (Env.shim as NSString).deletingLastPathComponent
        let drop = [
            "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "/usr/bin/env", "-i",
            "XDG_RUNTIME_DIR=\(home)/xdg", "HOME=\(home)", "USER=\(user)", "PATH=\(shimDir):/usr/sbin:/usr/bin:/sbin:/bin"
        ]
        let kit = Background(
            drop + [
                "rootlesskit", "--net=host", "--copy-up=/etc", "--copy-up=/run", "--state-dir=\(home)/xdg/rootlesskit",
                "/bin/sh", "-c", "rm -f /run/containerd; mkdir -p /run/containerd; exec containerd -c \(home)/containerd.toml"
            ],
            log: home + "/containerd.log")
        defer { kit.stop(SIGTERM) }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: sock) { usleep(25_000) }
        let child = try String(contentsOfFile: home + "/xdg/rootlesskit/child_pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        func ctr(_ args: [String]) -> CmdResult {
            let argv = drop + ["nsenter", "-U", "--preserve-credentials", "-m", "-t", child, "ctr", "-a", sock] + args
            return Cmd.run(argv[0], Array(argv.dropFirst()), timeout: 60, cwd: home)
        }
        var r = ctr(["image", "import", image])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = ctr([
            "run", "--rm", "--runtime", "io.containerd.skiff.v2", "docker.io/skiff/busybox:test", "rk1",
            "/bin/sh", "-c", "echo in-rootless-containerd $(id -u) $(cat /proc/self/uid_map); exit 3"
        ])
        XCTAssertEqual(r.code, 3, r.stderr + ((try? String(contentsOfFile: home + "/containerd.log", encoding: .utf8))?.suffix(2000) ?? ""))
        XCTAssertTrue(r.stdout.hasPrefix("in-rootless-containerd 0 0 \(uid) 1"), r.stdout)
        r = ctr(["run", "-d", "--runtime", "io.containerd.skiff.v2", "docker.io/skiff/busybox:test", "rk2", "/bin/sleep", "3069"])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = ctr(["task", "exec", "--exec-id", "e1", "rk2", "/bin/sh", "-c", "echo exec-ok"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "exec-ok\n")
        XCTAssertTrue(ctr(["task", "ls"]).stdout.contains("RUNNING"))
        XCTAssertEqual(ctr(["task", "kill", "-s", "KILL", "rk2"]).code, 0)
        for _ in 0..<100 where !ctr(["task", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        XCTAssertEqual(ctr(["task", "rm", "rk2"]).code, 0)
        XCTAssertEqual(ctr(["container", "rm", "rk2"]).code, 0)
        XCTAssertEqual(ctr(["task", "ls", "-q"]).stdout, "")
    }
    /// skiffctl as the user: its store under ~/.local/share/skiff and state under
    /// $XDG_RUNTIME_DIR/skiff, every command in a user namespace of its own (the user as root,
    /// its first /etc/subuid range as 1...), layer owners shifted into that range on disk, overlay
    /// snapshots (userxattr), a pull from a local registry, run --rm with the exit code, run -d
    /// then tasks exec/kill/rm from later commands, containers rm; nothing left.
    func testSkiffctlAsAUser() throws {
        let layer = home + "/owned"
        try FileManager.default.createDirectory(atPath: layer + "/data", withIntermediateDirectories: true)
        try "x".write(toFile: layer + "/data/f", atomically: true, encoding: .utf8)
        chown(layer + "/data", 1000, 1000); chown(layer + "/data/f", 1000, 1000)
        let image = home + "/owned.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs + ":" + layer, image]).code, 0)
        chmod(image, 0o644)
        let ctl = [Env.skiffctl]
        // No XDG_RUNTIME_DIR: refused (its state would be a guessable /tmp path another user
        // could create first and listen in), and so is one that others can write.
        var r = Cmd.run(
            "/usr/bin/setpriv",
            [
                "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "/usr/bin/env", "-i", "HOME=\(home)",
                "PATH=/usr/bin:/bin", Env.skiffctl, "images", "ls"
            ])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("XDG_RUNTIME_DIR"), r.stderr)
        chmod(home + "/xdg", 0o777)
        r = asUser(ctl + ["images", "ls"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("only you can write"), r.stderr)
        chmod(home + "/xdg", 0o700)
        r = asUser(ctl + ["images", "import", image])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/.local/share/skiff/meta.db"), "the user's store")
        r = asUser(ctl + ["run", "--rm", "docker.io/skiff/busybox:test", "u1", "/bin/sh", "-c", "echo $(id -u) $(stat -c %u /data/f); exit 4"])
        XCTAssertEqual(r.code, 4, r.stderr)
        XCTAssertEqual(r.stdout, "0 1000\n", "image owners as the image gives them")
        // On disk: uid 1000 of the image is the user's subordinate id 999 above its range's start.
        let lines: [[Substring]] = try String(contentsOfFile: "/etc/subuid", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ":") }
        let mine: [Substring]? = lines.first { $0.count == 3 && $0[0] == Substring(user) }
        let sub: Int? = mine.flatMap { Int($0[1]) }
        let found = Cmd.run("/usr/bin/find", [home + "/.local/share/skiff/snapshots", "-name", "f", "-path", "*/data/f", "-printf", "%U\n"]).stdout
        XCTAssertEqual(found.split(separator: "\n").first.map(String.init), sub.map { "\($0 + 999)" }, "shifted into the user's range")

        r = asUser(ctl + ["run", "-d", "docker.io/skiff/busybox:test", "u2", "/bin/sleep", "3079"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/xdg/skiff/s"), "shim sockets under $XDG_RUNTIME_DIR")
        r = asUser(ctl + ["tasks", "exec", "--exec-id", "e1", "u2", "/bin/sh", "-c", "touch /w && echo exec-ok"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "exec-ok\n")
        XCTAssertEqual(asUser(ctl + ["tasks", "kill", "-s", "KILL", "u2"]).code, 0)
        for _ in 0..<100 where !asUser(ctl + ["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        XCTAssertEqual(asUser(ctl + ["tasks", "rm", "u2"]).code, 0)
        r = asUser(ctl + ["containers", "rm", "u2"])
        XCTAssertEqual(r.code, 0, r.stderr)

        // A pull from a local registry (fixtures/hostile-registry.py, plain).
        let port = Int.random(in: 20000...29000)
        let reg = Background(["/usr/bin/python3", Env.packageRoot + "/fixtures/hostile-registry.py", image, "\(port)", "plain"], log: home + "/registry.log")
        defer { reg.stop(SIGKILL) }
        reg.waitForHTTP("http://127.0.0.1:\(port)/v2/")
        r = asUser(ctl + ["images", "pull", "--plain-http", "127.0.0.1:\(port)/skiff/owned:latest"])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = asUser(ctl + ["run", "--rm", "127.0.0.1:\(port)/skiff/owned:latest", "u3", "/bin/cat", "/data/f"])
        XCTAssertEqual(r.stdout, "x", r.stderr)
        XCTAssertEqual(asUser(ctl + ["containers", "ls"]).stdout.split(separator: "\n").count, 1, "only the header")
        XCTAssertTrue(asUser(ctl + ["doctor"]).stdout.contains("no problems found"))
        XCTAssertEqual(Host.processes(owner: uid).filter { Host.processAlive($0) }, [], "no shim or container left")
    }
}

import Foundation
import XCTest

/// skiffctl end to end with private root and state directories: import a locally built image,
/// unpack it into overlay snapshots, run containers through the shim, and bad inputs that must
/// fail clearly and leave nothing behind.
final class SkiffctlTests: ImageTestCase {
    func ctl(_ args: [String], timeout: TimeInterval = 60) -> CmdResult {
        ctl(args, store: "", snapshotter: nil, timeout: timeout)
    }

    /// skiffctl on the store `root<store>`/`state<store>`, with SKIFF_SNAPSHOTTER when given.
    func ctl(_ args: [String], store: String, snapshotter: String?, timeout: TimeInterval = 60) -> CmdResult {
        var env = ProcessInfo.processInfo.environment
        // skiffctl finds the shim next to itself or on PATH.
        env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        if let snapshotter { env["SKIFF_SNAPSHOTTER"] = snapshotter }
        return Cmd.run(Env.skiffctl, ["--root", work + "/root" + store, "--state", work + "/state" + store] + args, timeout: timeout, env: env)
    }

    func testImportRunAndCleanup() throws {
        var r = ctl(["images", "import", image])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("docker.io/skiff/busybox:test"), r.stdout)
        r = ctl(["images", "ls"])
        XCTAssertTrue(r.stdout.contains("docker.io/skiff/busybox:test\tapplication/vnd.oci.image.manifest.v1+json\tsha256:"), r.stdout)

        // Short names are normalized the Docker way; exit code and output come through.
        r = ctl(["run", "--rm", "skiff/busybox:test", "r1", "/bin/skiff-payload", "hostname", "echo", "hello-skiffctl", "exit", "3"])
        XCTAssertEqual(r.code, 3, r.stderr)
        XCTAssertTrue(r.stdout.contains("hello-skiffctl"), r.stdout)
        XCTAssertEqual(r.values["hostname"], "r1")
        // The image's Cmd when none is given, env and cwd overrides.
        r = ctl(["run", "--rm", "--env", "FOO=bar", "--cwd", "/etc", "skiff/busybox:test", "r2", "/bin/sh", "-c", "echo $FOO $(pwd)"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("bar /etc"), r.stdout)
        // A terminal (`script` gives skiffctl one): the container sees a tty, our input reaches it.
        if let script = Env.which("script") {
            let base = [Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "run", "-t", "--rm", "skiff/busybox:test"]
            var env = ProcessInfo.processInfo.environment
            env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
            r = Cmd.run(script, ["-qec", (base + ["t1", "/bin/skiff-payload", "tty", "exit", "6"]).joined(separator: " "), "/dev/null"], env: env)
            XCTAssertEqual(r.code, 6, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("isatty=1"), r.stdout)
            r = Cmd.run(
                script, ["-qec", (base + ["t2", "/bin/sh"]).joined(separator: " "), "/dev/null"],
                stdin: "echo typed-$((6*7))\nexit 4\n", env: env)
            XCTAssertTrue(r.stdout.contains("typed-42"), r.stdout)
            XCTAssertEqual(r.code, 4, r.stdout)
        }
        // A bind mount from the host, read-only.
        try FileManager.default.createDirectory(atPath: work + "/shared", withIntermediateDirectories: true)
        try "from-host".write(toFile: work + "/shared/f", atomically: true, encoding: .utf8)
        r = ctl([
            "run", "--rm", "--mount", "type=bind,src=\(work!)/shared,dst=/mnt/shared,options=rbind:ro", "skiff/busybox:test", "m1",
            "/bin/sh", "-c", "cat /mnt/shared/f; touch /mnt/shared/x 2>/dev/null || echo read-only"
        ])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("from-host") && r.stdout.contains("read-only"), r.stdout)
        r = ctl(["run", "--rm", "--mount", "type=bind,src=/nonexistent,dst=/x", "skiff/busybox:test", "m2", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent"), r.stderr)
        // file:// log.
        r = ctl(["run", "--rm", "--log-uri", "file://\(work!)/r3.log", "skiff/busybox:test", "r3", "/bin/sh", "-c", "echo to-log"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(((try? String(contentsOfFile: work + "/r3.log", encoding: .utf8)) ?? "").contains("to-log"))

        // --rm left nothing: no container, no active snapshot, no bundle, no mount, no shim.
        XCTAssertEqual(ctl(["containers", "ls"]).stdout.split(separator: "\n").count, 1)
        let snaps = ctl(["snapshots", "ls"]).stdout
        XCTAssertFalse(snaps.contains("active"), snaps)
        XCTAssertTrue(snaps.contains("committed"), "the layer stays, shared: \(snaps)")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: work + "/state/default")) ?? [], [])
        XCTAssertEqual(Host.mounts(containing: work), [])

        // Tags, namespaces, removal.
        XCTAssertEqual(ctl(["images", "tag", "skiff/busybox:test", "skiff/busybox:two"]).code, 0)
        r = ctl(["images", "tag", "skiff/busybox:test", "skiff/busybox:two"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("already exists"), r.stderr)
        XCTAssertEqual(ctl(["images", "tag", "--force", "skiff/busybox:test", "skiff/busybox:two"]).code, 0)
        r = ctl(["ns", "rm", "default"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("not empty"), r.stderr)
        XCTAssertEqual(ctl(["-n", "other", "ns", "ls"]).stdout, "default\nother\n")
        XCTAssertEqual(ctl(["ns", "rm", "other"]).code, 0)
        XCTAssertEqual(ctl(["images", "rm", "skiff/busybox:two"]).code, 0)
    }

    func testContainersAndTasks() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        var r = ctl(["run", "-d", "skiff/busybox:test", "d1", "/bin/sleep", "60"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(ctl(["tasks", "ls"]).stdout.contains("d1\t"), ctl(["tasks", "ls"]).stdout)
        XCTAssertTrue(ctl(["tasks", "ls"]).stdout.contains("RUNNING"))
        r = ctl(["tasks", "exec", "--exec-id", "e1", "d1", "/bin/skiff-payload", "pid", "echo", "in-exec", "exit", "4"])
        XCTAssertEqual(r.code, 4, r.stderr)
        XCTAssertTrue(r.stdout.contains("in-exec"))
        XCTAssertNotEqual(r.values["pid"], "1")
        XCTAssertGreaterThanOrEqual(ctl(["tasks", "ps", "d1"]).stdout.split(separator: "\n").count, 2)
        if let script = Env.which("script") {
            var env = ProcessInfo.processInfo.environment
            env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
            let cmd = [
                Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "tasks", "exec", "-t", "d1",
                "/bin/skiff-payload", "tty", "exit", "3"
            ].joined(separator: " ")
            r = Cmd.run(script, ["-qec", cmd, "/dev/null"], env: env)
            XCTAssertEqual(r.code, 3, r.stdout)
            XCTAssertTrue(r.stdout.contains("isatty=1"), r.stdout)
        }
        XCTAssertEqual(ctl(["tasks", "pause", "d1"]).code, 0)
        XCTAssertTrue(ctl(["tasks", "ls"]).stdout.contains("PAUSED"))
        XCTAssertEqual(ctl(["tasks", "resume", "d1"]).code, 0)
        XCTAssertTrue(ctl(["tasks", "metrics", "d1"]).stdout.contains("cpu.usage_usec"))
        r = ctl(["containers", "rm", "d1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.hasPrefix("skiffctl: remove container \"d1\": it has a task"), r.stderr)
        XCTAssertEqual(ctl(["tasks", "kill", "-s", "KILL", "d1"]).code, 0)
        for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        XCTAssertEqual(ctl(["tasks", "rm", "d1"]).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "d1"]).code, 0)

        // create, then start attached: the exit code comes back; info shows the spec.
        XCTAssertEqual(ctl(["containers", "create", "--env", "X=1", "skiff/busybox:test", "c2", "/bin/sh", "-c", "echo later $X; exit 9"]).code, 0)
        XCTAssertTrue(ctl(["containers", "info", "c2"]).stdout.contains("\"Image\": \"docker.io/skiff/busybox:test\""))
        r = ctl(["tasks", "start", "c2"])
        XCTAssertEqual(r.code, 9, r.stderr)
        XCTAssertTrue(r.stdout.contains("later 1"), r.stdout)
        XCTAssertEqual(ctl(["containers", "rm", "c2"]).code, 0)
        XCTAssertEqual(ctl(["containers", "ls"]).stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(Host.mounts(containing: work), [])
        XCTAssertTrue(Host.processes(mentioning: work + "/state").isEmpty, "no shim left")
    }

    /// Hostile working directories and users from every skiffctl entry point: `run --cwd`,
    /// `tasks exec --cwd`, an image whose WorkingDir is /proc/self/fd/17, `run -u` and an image
    /// whose User is 4294967295 ((uid_t)-1, which setresuid reads as "unchanged": root).
    func testHostileCwdAndUserAreRefused() throws {
        let probe = try EscapeProbe()
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["run", "-d", "skiff/busybox:test", "d1", "/bin/sleep", "60"]).code, 0)
        for (i, cwd) in EscapeProbe.hostileCwds.enumerated() {
            var r = ctl(["tasks", "exec", "--cwd", cwd, "d1", "/bin/sh", "-c", probe.script("exec-\(i)")])
            XCTAssertNotEqual(r.code, 0, "tasks exec --cwd \(cwd): \(r.stdout)")
            XCTAssertEqual(probe.leaks(r.stdout), [], "tasks exec --cwd \(cwd)")
            r = ctl(["run", "--rm", "--cwd", cwd, "skiff/busybox:test", "r\(i)", "/bin/sh", "-c", probe.script("run-\(i)")])
            XCTAssertNotEqual(r.code, 0, "run --cwd \(cwd): \(r.stdout)")
            XCTAssertEqual(probe.leaks(r.stdout), [], "run --cwd \(cwd)")
        }
        for (n, config) in [
            ("wd", #"{"WorkingDir": "/proc/self/fd/17"}"#), ("user", #"{"User": "4294967295"}"#),
            ("group", #"{"User": "0:4294967295"}"#)
        ] {
            let tar = work + "/\(n).tar", ref = "docker.io/skiff/hostile-\(n):test"
            XCTAssertEqual(Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs, tar, ref, config]).code, 0)
            XCTAssertEqual(ctl(["images", "import", tar]).code, 0)
            let r = ctl(["run", "--rm", ref, "h-\(n)", "/bin/sh", "-c", "id -u; " + probe.script("image-\(n)")])
            XCTAssertNotEqual(r.code, 0, "image \(config): \(r.stdout)")
            XCTAssertFalse(r.stdout.hasPrefix("0\n"), "image \(config) ran as root")
            XCTAssertEqual(probe.leaks(r.stdout), [], "image \(config)")
        }
        for u in ["4294967295", "0:4294967295", "2147483648"] {
            let r = ctl(["run", "--rm", "-u", u, "skiff/busybox:test", "u1", "/bin/sh", "-c", "id -u"])
            XCTAssertNotEqual(r.code, 0, "-u \(u): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("out of range"), r.stderr)
        }
        XCTAssertEqual(ctl(["tasks", "kill", "-s", "KILL", "d1"]).code, 0)
        for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        XCTAssertEqual(ctl(["tasks", "rm", "d1"]).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "d1"]).code, 0)
        XCTAssertEqual(ctl(["containers", "ls"]).stdout.split(separator: "\n").count, 1, "refused runs leave no container")
    }

    /// Exec ids name files in the bundle: `../x` is refused, and a second exec with the id of a
    /// running one is refused without touching the first one's output or exit.
    func testExecIdsAreValidatedAndNotShared() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["run", "-d", "skiff/busybox:test", "d1", "/bin/sleep", "60"]).code, 0)
        for bad in ["../x", "a/b", ".hidden", "x..y", String(repeating: "a", count: 77)] {
            let r = ctl(["tasks", "exec", "--exec-id", bad, "d1", "/bin/true"])
            XCTAssertNotEqual(r.code, 0, bad)
            XCTAssertTrue(r.stderr.contains("invalid exec id"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/state/default/x-stdout"))
        let first = Background(
            [
                Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "tasks", "exec", "--exec-id", "same",
                "d1", "/bin/sh", "-c", "sleep 1; echo first-output; exit 5"
            ], log: work + "/first.log")
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: work + "/state/default/d1/same-stdout") { usleep(10_000) }
        let second = ctl(["tasks", "exec", "--exec-id", "same", "d1", "/bin/echo", "second"])
        XCTAssertNotEqual(second.code, 0)
        XCTAssertTrue(second.stderr.contains("already in use"), second.stderr)
        var st: Int32 = 0
        for _ in 0..<500 where waitpid(first.pid, &st, WNOHANG) == 0 { usleep(10_000) }
        XCTAssertEqual((st >> 8) & 0xff, 5, "the first exec's exit code")
        XCTAssertTrue(((try? String(contentsOfFile: work + "/first.log", encoding: .utf8)) ?? "").contains("first-output"))
        XCTAssertEqual(ctl(["tasks", "kill", "-s", "KILL", "d1"]).code, 0)
        for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
        XCTAssertEqual(ctl(["tasks", "rm", "d1"]).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "d1"]).code, 0)
    }

    /// CVE-2021-41103 class: a local user must not reach the store. Snapshots hold image files as
    /// they are (the fixture has a setuid-root payload), bundles hold the mounted rootfs (its
    /// path is in /proc/self/mountinfo for anyone to read) and configs with their environment,
    /// the database holds every spec. Tried as a real unprivileged user, on a store first made
    /// with the old 0755 modes (tightened when skiffctl opens it). Before the fix the user ran
    /// the setuid payload from the snapshot and from the rootfs and read config.json.
    func testStoreIsClosedToOtherLocalUsers() throws {
        let user = try TestUser()
        for d in ["root/snapshots", "root/content/blobs/sha256", "root/content/ingest", "state"] {
            try FileManager.default.createDirectory(
                atPath: work + "/" + d, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o755])
        }
        chmod(work, 0o755)
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        XCTAssertEqual(ctl(["run", "-d", "--env", "SECRET=hunter2", "skiff/busybox:test", "d1", "/bin/sleep", "60"]).code, 0)
        defer {
            ctl(["tasks", "kill", "-s", "KILL", "d1"])
            for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
            ctl(["tasks", "rm", "d1"]); ctl(["containers", "rm", "d1"])
        }
        for (d, mode) in [("root", 0o700), ("root/snapshots", 0o700), ("root/content", 0o700), ("state", 0o700), ("state/default", 0o700)] {
            XCTAssertEqual(((try? FileManager.default.attributesOfItem(atPath: work + "/" + d))?[.posixPermissions] as? Int), mode, d)
        }
        let snapshots = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/snapshots")) ?? []
        XCTAssertFalse(snapshots.isEmpty)
        var attempts = snapshots.map { "\(work!)/root/snapshots/\($0)/fs/bin/skiff-payload-suid id" }
        attempts += [
            "\(work!)/state/default/d1/rootfs/bin/skiff-payload-suid id", "cat \(work!)/state/default/d1/config.json",
            "cat \(work!)/root/meta.db", "ls \(work!)/root/content/blobs/sha256", "ls \(work!)/state/runtime"
        ]
        for a in attempts {
            let r = user.sh(a)
            XCTAssertNotEqual(r.code, 0, "as \(user.name): \(a) succeeded: \(r.stdout)")
            XCTAssertFalse(r.stdout.contains("euid=0") || r.stdout.contains("hunter2"), "as \(user.name): \(a): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("denied"), "\(a): \(r.stderr)")
        }
        // The container itself still runs as before.
        XCTAssertEqual(ctl(["tasks", "exec", "d1", "/bin/sh", "-c", "echo $SECRET"]).stdout, "hunter2\n")
    }

    func testExportImportCheckMountPruneEventsAndDoctor() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        var r = ctl(["images", "check"])
        XCTAssertTrue(r.stdout.contains("docker.io/skiff/busybox:test\tcomplete\t3/3"), r.stdout)
        // Export, then import into another namespace of another store: the same image.
        let out = work + "/export.tar"
        XCTAssertEqual(ctl(["images", "export", out, "skiff/busybox:test"]).code, 0)
        let digest = { (s: String) in s.split(separator: "\t").dropFirst(2).first.map(String.init) ?? "" }
        r = Cmd.run(Env.skiffctl, ["--root", work + "/root2", "--state", work + "/state2", "images", "import", out])
        XCTAssertEqual(r.code, 0, r.stderr)
        let again = Cmd.run(Env.skiffctl, ["--root", work + "/root2", "--state", work + "/state2", "images", "ls"]).stdout
        XCTAssertEqual(digest(String(again.split(separator: "\n")[1])), digest(String(ctl(["images", "ls"]).stdout.split(separator: "\n")[1])))

        // A docker-archive (`docker save` format, made by skopeo) imports as a Docker v2s2 image.
        if let skopeo = Env.which("skopeo") {
            let archive = work + "/docker.tar"
            XCTAssertEqual(Cmd.run(skopeo, ["copy", "-q", "oci-archive:" + image, "docker-archive:\(archive):skiff/busybox:docker"]).code, 0)
            r = ctl(["images", "import", archive])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(ctl(["images", "ls"]).stdout.contains("docker.io/skiff/busybox:docker\tapplication/vnd.docker.distribution.manifest.v2+json"))
            r = ctl(["run", "--rm", "skiff/busybox:docker", "dk1", "/bin/skiff-payload", "echo", "docker-archive-ok"])
            XCTAssertTrue(r.stdout.contains("docker-archive-ok"), r.stderr)
            XCTAssertEqual(ctl(["images", "rm", "skiff/busybox:docker"]).code, 0)
            // And back out in that format: skopeo reads it, and so do we.
            let saved = work + "/saved.tar"
            XCTAssertEqual(ctl(["images", "export", "--format", "docker", saved, "skiff/busybox:test"]).code, 0)
            r = Cmd.run(skopeo, ["inspect", "docker-archive:" + saved])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("\"Architecture\": \"amd64\""), r.stdout)
            r = Cmd.run(Env.skiffctl, ["--root", work + "/root3", "--state", work + "/state3", "images", "import", saved])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("docker.io/skiff/busybox:test"), r.stdout)
        }

        // A read-only view of the image's rootfs.
        let mnt = work + "/mnt"
        XCTAssertEqual(ctl(["images", "mount", "skiff/busybox:test", mnt]).code, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnt + "/bin/skiff-payload"))
        XCTAssertFalse(FileManager.default.createFile(atPath: mnt + "/new", contents: Data()), "read-only")
        // nosuid and nodev: the image's setuid payload gives another user nothing there.
        let view = Host.mounts(containing: mnt).first ?? ""
        XCTAssertTrue(view.contains("nosuid") && view.contains("nodev"), view)
        chmod(work, 0o755)
        let user = try TestUser()
        let suid = user.run(mnt + "/bin/skiff-payload-suid", ["id"])
        XCTAssertFalse(suid.stdout.contains("euid=0"), suid.stdout)
        XCTAssertEqual(ctl(["images", "unmount", mnt]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: mnt + "/bin"))

        // Events the shim published for a run.
        XCTAssertEqual(ctl(["run", "--rm", "skiff/busybox:test", "ev1", "/bin/sh", "-c", "exit 5"]).code, 5)
        let events = ctl(["events"]).stdout.split(separator: "\n").filter { $0.contains("\"ev1\"") }
        let topics = events.compactMap { line -> String? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["topic"] as? String
        }
        XCTAssertEqual(topics, ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"])
        XCTAssertTrue(events[2].contains("\"exitStatus\":5"), String(events[2]))

        // doctor: a shim killed under a running task, and an active snapshot without a container.
        XCTAssertEqual(ctl(["run", "-d", "skiff/busybox:test", "d1", "/bin/sleep", "3029"]).code, 0)
        // Ours: its -address is under this test's state dir (another run may have a "d1" too).
        let shim = Host.processes(mentioning: "-id d1").first { pid in
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmd.contains("containerd-shim-skiff-v2") && cmd.contains(work + "/state")
        }
        XCTAssertNotNil(shim)
        if let shim { kill(shim, SIGKILL) }
        usleep(100_000)
        r = ctl(["doctor"])
        XCTAssertTrue(r.stdout.contains("record-without-shim\td1"), r.stdout)
        XCTAssertEqual(ctl(["doctor", "--fix"]).code, 0)
        XCTAssertTrue(ctl(["doctor"]).stdout.contains("no problems found"))
        for _ in 0..<100 where !Host.processes(mentioning: "sleep 3029").isEmpty { usleep(20_000) }
        XCTAssertTrue(Host.processes(mentioning: "sleep 3029").isEmpty, "the container went with the repair")
        XCTAssertEqual(ctl(["containers", "rm", "d1"]).code, 0)

        // Snapshots by hand: prepare on the image's layer, write, commit, prepare on top, mount.
        let layer = String(
            ctl(["snapshots", "ls"]).stdout.split(separator: "\n").dropFirst().first { $0.hasSuffix("committed") }!
                .split(separator: "\t")[0])
        let snapshotDirs = { Set((try? FileManager.default.contentsOfDirectory(atPath: self.work + "/root/snapshots")) ?? []) }
        var dirs = snapshotDirs()
        XCTAssertEqual(ctl(["snapshots", "prepare", "work1", layer]).code, 0)
        let work1ID = snapshotDirs().subtracting(dirs)
        var mnt1 = ctl(["snapshots", "mounts", work + "/m1", "work1"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(mnt1.hasPrefix("mount -t overlay overlay \(work!)/m1 -o "), mnt1)
        try FileManager.default.createDirectory(atPath: work + "/m1", withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.sh(mnt1 + " && echo layered > \(work!)/m1/added && umount \(work!)/m1").code, 0)
        XCTAssertEqual(ctl(["snapshots", "commit", "mine", "work1"]).code, 0)
        dirs = snapshotDirs()
        XCTAssertEqual(ctl(["snapshots", "prepare", "work2", "mine"]).code, 0)
        let work2ID = snapshotDirs().subtracting(dirs)
        mnt1 = ctl(["snapshots", "mounts", work + "/m1", "work2"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        r = Cmd.sh(mnt1 + " && cat \(work!)/m1/added && test -x \(work!)/m1/bin/skiff-payload; st=$?; umount \(work!)/m1; exit $st")
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("layered"))
        XCTAssertEqual(ctl(["snapshots", "rm", "work2"]).code, 0)
        XCTAssertNotEqual(ctl(["snapshots", "rm", layer]).code, 0, "it has children")
        XCTAssertEqual(ctl(["snapshots", "rm", "mine"]).code, 0)
        // The ids of removed snapshots are not given again (a command may still hold one).
        dirs = snapshotDirs()
        XCTAssertEqual(ctl(["snapshots", "prepare", "work3", layer]).code, 0)
        let work3ID = snapshotDirs().subtracting(dirs)
        XCTAssertEqual(work3ID.count, 1)
        XCTAssertTrue(work3ID.isDisjoint(with: work1ID.union(work2ID)), "\(work3ID) reuses one of \(work1ID.union(work2ID))")
        XCTAssertEqual(ctl(["snapshots", "rm", "work3"]).code, 0)

        // A lease keeps a blob through GC until it is removed.
        let configDigest = ctl(["content", "ls"]).stdout.split(separator: "\n").dropFirst()
            .map { String($0.split(separator: "\t")[0]) }.first { d in (ctl(["content", "get", d]).stdout).contains("diff_ids") }!
        XCTAssertEqual(ctl(["leases", "create", "--id", "keep1", "--content", configDigest]).code, 0)
        XCTAssertTrue(ctl(["leases", "ls"]).stdout.contains("keep1\t"))

        // GC: after the image is gone its layer and blobs go too (but not the leased one).
        XCTAssertEqual(ctl(["images", "rm", "skiff/busybox:test"]).code, 0)
        r = ctl(["images", "prune"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("removed snapshot sha256:"), r.stdout)
        // The OCI image's 3 blobs, and what the docker-archive added (its uncompressed layer, its manifest).
        XCTAssertEqual(r.stdout.components(separatedBy: "removed content").count - 1, Env.which("skopeo") != nil ? 4 : 2, r.stdout)
        XCTAssertEqual(ctl(["content", "ls"]).stdout.split(separator: "\n").count, 2, "the leased config stays")
        XCTAssertEqual(ctl(["leases", "rm", "keep1"]).code, 0)
        XCTAssertTrue(ctl(["content", "prune"]).stdout.contains(configDigest))
        XCTAssertEqual(ctl(["content", "ls"]).stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(ctl(["snapshots", "ls"]).stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(Host.mounts(containing: work), [])
    }

    /// Writes an OCI archive: the fixture image plus a layer with /a/{keep,gone} and /d/old, and one
    /// that deletes /a/gone (whiteout) and makes /d opaque with /d/new.   args: SRC DST
    static let layeredImage = """
        import gzip, hashlib, io, json, sys, tarfile
        src, dst = sys.argv[1], sys.argv[2]
        t = tarfile.open(src)
        blobs = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
        idx = json.loads(blobs["index.json"]); man = json.loads(blobs["blobs/sha256/" + idx["manifests"][0]["digest"][7:]])
        cfg = json.loads(blobs["blobs/sha256/" + man["config"]["digest"][7:]])
        dg = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
        def layer(entries):
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w") as l:
                for name, data in entries:
                    i = tarfile.TarInfo(name)
                    if data is None: i.type = tarfile.DIRTYPE; i.mode = 0o755; l.addfile(i)
                    else: i.size = len(data); l.addfile(i, io.BytesIO(data))
            return raw.getvalue()
        l1 = layer([("a", None), ("a/keep", b"k"), ("a/gone", b"g"), ("d", None), ("d/old", b"o")])
        l2 = layer([("a/.wh.gone", b""), ("d", None), ("d/.wh..wh..opq", b""), ("d/new", b"n")])
        extra = {}
        for raw in (l1, l2):
            z = gzip.compress(raw, mtime=0); extra[dg(z)] = z
            man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg(z), "size": len(z)})
            cfg["rootfs"]["diff_ids"].append(dg(raw))
        cb = json.dumps(cfg).encode(); extra[dg(cb)] = cb
        man["config"] = {"mediaType": man["config"]["mediaType"], "digest": dg(cb), "size": len(cb)}
        mb = json.dumps(man).encode(); extra[dg(mb)] = mb
        idx["manifests"][0].update({"digest": dg(mb), "size": len(mb), "annotations": {"io.containerd.image.name": "docker.io/skiff/layers:1"}})
        out = tarfile.open(dst, "w")
        def add(n, b):
            i = tarfile.TarInfo(n); i.size = len(b); out.addfile(i, io.BytesIO(b))
        add("oci-layout", blobs["oci-layout"]); add("index.json", json.dumps(idx).encode())
        for n, b in blobs.items():
            if n.startswith("blobs/"): add(n, b)
        for d, b in extra.items(): add("blobs/sha256/" + d[7:], b)
        out.close()
        """

    /// An export is whole or absent: it was written in place, so a failure (a full disk) left a
    /// partial archive where the old file had been, and abandoning it removed whatever the path
    /// named (`/dev/full`, `/dev/null`). A new file or a regular one is now written as a new
    /// file, renamed over the path once whole (with the old one's owner and mode); `-`, a device,
    /// a FIFO or a symlink are written as a shell's `>` writes them, the docker format counting
    /// each layer's size in a first pass where it cannot seek (the same bytes as to a file).
    func testExportIsWholeOrAbsent() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        let saved = work + "/saved.tar"
        XCTAssertEqual(ctl(["images", "export", "--format", "docker", saved, "skiff/busybox:test"]).code, 0)
        for format in ["docker", "oci"] {
            let file = work + "/\(format).tar"
            if format == "oci" { XCTAssertEqual(ctl(["images", "export", file, "skiff/busybox:test"]).code, 0) }
            // To standard output, a file and a pipe: the archive written to a file, byte for byte.
            let args = [Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "images", "export", "--format", format, "-", "skiff/busybox:test"]
            for (how, out) in [("> \"$0\"", work + "/stdout.tar"), ("| cat > \"$0\"", work + "/pipe.tar")] {
                let r = Cmd.run("/bin/sh", ["-c", "\"$@\" " + how, out] + args)
                XCTAssertEqual(r.code, 0, r.stderr)
                XCTAssertEqual(
                    FileManager.default.contents(atPath: out), FileManager.default.contents(atPath: format == "docker" ? saved : file),
                    "\(format) \(how)")
            }
        }
        // Through a symlink, as a shell's `>`: its target is emptied and written, the link stays.
        let link = work + "/link.tar"
        XCTAssertEqual(symlink("saved.tar", link), 0)
        XCTAssertEqual(ctl(["images", "export", link, "skiff/busybox:test"]).code, 0)
        XCTAssertEqual(try? FileManager.default.destinationOfSymbolicLink(atPath: link), "saved.tar")
        XCTAssertEqual(FileManager.default.contents(atPath: saved), FileManager.default.contents(atPath: work + "/oci.tar"), "no old tail")
        // A file that is replaced keeps its owner and mode (a private export stays private).
        let kept = work + "/kept.tar"
        XCTAssertTrue(FileManager.default.createFile(atPath: kept, contents: Data("old".utf8)))
        XCTAssertEqual(chown(kept, 65534, 65534), 0)
        XCTAssertEqual(chmod(kept, 0o600), 0)
        XCTAssertEqual(ctl(["images", "export", kept, "skiff/busybox:test"]).code, 0)
        var st = stat()
        XCTAssertEqual(stat(kept, &st), 0)
        XCTAssertEqual([st.st_uid, st.st_gid, st.st_mode & 0o7777], [65534, 65534, 0o600])
        XCTAssertEqual(FileManager.default.contents(atPath: kept), FileManager.default.contents(atPath: work + "/oci.tar"))

        // Stopped while the new file is flushed (strace holds fsync back): SIGINT ends the export
        // with a message and the old file as it was; SIGKILL leaves no temporary file behind.
        try Env.requireStrace("hold the export's fsync back")
        let base = [Env.skiffctl, "--root", work + "/root", "--state", work + "/state"]
        let dir = work + "/stop"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for sig in [SIGINT, SIGKILL] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/out.tar", contents: Data("old".utf8)))
            let export = Background(
                ["/usr/bin/strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_enter=2000000"]
                    + base + ["images", "export", dir + "/out.tar", "skiff/busybox:test"], log: work + "/stop.log")
            usleep(1_000_000)
            let child = Cmd.run("/usr/bin/pgrep", ["-P", String(export.pid)]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            // Only a pid we found: kill(-1) would signal every process.
            if let pid = pid_t(child), pid > 1 {
                XCTAssertEqual(kill(pid, sig), 0)
            } else {
                XCTFail("no skiffctl under strace (it ended before its fsync?): \(child)")
            }
            var status: Int32 = 0
            XCTAssertEqual(waitpid(export.pid, &status, 0), export.pid)
            export.pid = 0
            XCTAssertNotEqual(status, 0, "an exit code or a signal")
            if sig == SIGINT {
                let log = (try? String(contentsOfFile: work + "/stop.log", encoding: .utf8)) ?? ""
                XCTAssertTrue(log.contains("interrupted by signal 2"), log)
            }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.tar"], "signal \(sig)")
            XCTAssertEqual(FileManager.default.contents(atPath: dir + "/out.tar"), Data("old".utf8), "signal \(sig)")
        }

        // A full disk: a clear error, the old file as it was, no temporary file left.
        let small = work + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "skiff-export-test", small]).code, 0)
        defer { _ = Cmd.run("/bin/umount", [small]) }
        XCTAssertTrue(FileManager.default.createFile(atPath: small + "/out.tar", contents: Data("old".utf8)))
        for format in ["oci", "docker"] {
            let r = ctl(["images", "export", "--format", format, small + "/out.tar", "skiff/busybox:test"])
            XCTAssertNotEqual(r.code, 0)
            XCTAssertTrue(r.stderr.contains("export") && r.stderr.contains("No space left on device"), r.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: small), ["out.tar"])
            XCTAssertEqual(FileManager.default.contents(atPath: small + "/out.tar"), Data("old".utf8))
        }
        // A device is written, never removed.
        let r = ctl(["images", "export", "/dev/full", "skiff/busybox:test"])
        XCTAssertTrue(r.code != 0 && r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertEqual(stat("/dev/full", &st), 0, "/dev/full is still there")
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR)
    }

    /// Whiteouts and opaque directories across layers, with the overlayfs snapshotter and with the
    /// native (copying) one.
    func testLayersWithDeletionsOnBothSnapshotters() throws {
        let layered = work + "/layers.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", SkiffctlTests.layeredImage, image, layered]).code, 0)
        for snapshotter in ["overlayfs", "native"] {
            func sctl(_ a: [String]) -> CmdResult { ctl(a, store: "-" + snapshotter, snapshotter: snapshotter) }
            XCTAssertEqual(sctl(["images", "import", layered]).code, 0)
            let r = sctl(["run", "--rm", "skiff/layers:1", "l1", "/bin/sh", "-c", "echo a: $(ls /a); echo d: $(ls /d); touch /a/written && echo rw"])
            XCTAssertEqual(r.code, 0, snapshotter + ": " + r.stderr)
            XCTAssertTrue(r.stdout.contains("a: keep\n"), snapshotter + ": " + r.stdout)
            XCTAssertTrue(r.stdout.contains("d: new\n"), snapshotter + ": " + r.stdout)
            XCTAssertTrue(r.stdout.contains("rw"), snapshotter + ": " + r.stdout)
            // The committed layers were not touched by the container's write.
            XCTAssertTrue(sctl(["run", "--rm", "skiff/layers:1", "l2", "/bin/ls", "/a"]).stdout == "keep\n")
            XCTAssertEqual(sctl(["snapshots", "ls"]).stdout.split(separator: "\n").count, 4, "three committed layers")
        }
    }

    /// A device node an image carries (here /hostnull, c 1:3, mode 0666) is inert where the
    /// host can reach the rootfs (/proc/PID/root, which a same-uid local user may open): the
    /// rootfs is mounted nodev on both snapshotters. It used to open the host device.
    func testDeviceNodesFromAnImageAreInert() throws {
        let layer = work + "/devlayer"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: true)
        XCTAssertEqual(mknod(layer + "/hostnull", S_IFCHR | 0o666, dev_t((1 << 8) | 3)), 0)
        chmod(layer + "/hostnull", 0o666)
        let devImage = work + "/dev.tar"
        let b = Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs + ":" + layer, devImage, "docker.io/skiff/dev:1"])
        XCTAssertEqual(b.code, 0, b.stderr)
        for (i, snapshotter) in ["overlayfs", "native"].enumerated() {
            func sctl(_ a: [String]) -> CmdResult { ctl(a, store: "-" + snapshotter, snapshotter: snapshotter) }
            XCTAssertEqual(sctl(["images", "import", devImage]).code, 0)
            let marker = "\(3041 + i)"
            var r = sctl(["run", "-d", "skiff/dev:1", "dev1", "/bin/sleep", marker])
            XCTAssertEqual(r.code, 0, snapshotter + ": " + r.stderr)
            let pid = Host.processes(mentioning: "sleep " + marker).first { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").hasPrefix("/bin/sleep")
            }
            XCTAssertNotNil(pid, snapshotter)
            if let pid {
                let path = "/proc/\(pid)/root/hostnull"
                var st = stat()
                XCTAssertEqual(lstat(path, &st), 0, "the node was unpacked: " + snapshotter)
                XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, snapshotter)
                let fd = open(path, O_WRONLY)
                let err = errno
                if fd >= 0 { close(fd) }
                XCTAssertEqual(fd, -1, snapshotter + ": the image's device node opened the host's device")
                XCTAssertEqual(err, EACCES, snapshotter)
            }
            XCTAssertEqual(sctl(["tasks", "kill", "-s", "KILL", "dev1"]).code, 0)
            for _ in 0..<100 where !sctl(["tasks", "ls"]).stdout.contains("STOPPED") { usleep(20_000) }
            XCTAssertEqual(sctl(["tasks", "rm", "dev1"]).code, 0)
            r = sctl(["containers", "rm", "dev1"])
            XCTAssertEqual(r.code, 0, r.stderr)
        }
        XCTAssertEqual(Host.mounts(containing: work), [])
    }

    /// A store written before snapshots had a snapshotter column (schema v3: native keys were
    /// "native:<key>") opens, is migrated once, and both snapshotters' images still run.
    func testStoreWithPrefixedSnapshotKeysIsMigrated() throws {
        func sctl(_ a: [String], _ snapshotter: String) -> CmdResult { ctl(a, store: "", snapshotter: snapshotter) }
        XCTAssertEqual(sctl(["images", "import", image], "overlayfs").code, 0)
        XCTAssertEqual(sctl(["-n", "nat", "images", "import", image], "native").code, 0)
        XCTAssertEqual(sctl(["run", "--rm", "skiff/busybox:test", "m0", "/bin/true"], "overlayfs").code, 0)
        XCTAssertEqual(sctl(["-n", "nat", "run", "--rm", "skiff/busybox:test", "m0", "/bin/true"], "native").code, 0)
        // Back to v3's layout, as a store of the previous release has it.
        let downgrade = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.executescript("CREATE TABLE old(namespace TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL UNIQUE, parent TEXT, "
                "kind TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY(namespace, key)); "
                "INSERT INTO old SELECT namespace, CASE snapshotter WHEN 'native' THEN 'native:' || key ELSE key END, id, "
                "CASE WHEN snapshotter = 'native' AND parent IS NOT NULL THEN 'native:' || parent ELSE parent END, kind, created FROM snapshots; "
                "DROP TABLE snapshots; ALTER TABLE old RENAME TO snapshots; PRAGMA user_version=3;")
            db.commit()
            print(db.execute("SELECT count(*) FROM snapshots WHERE key LIKE 'native:%'").fetchone()[0])
            """
        let d = Cmd.run("/usr/bin/python3", ["-c", downgrade, work + "/root/meta.db"])
        XCTAssertEqual(d.code, 0, d.stderr)
        XCTAssertNotEqual(d.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0", "the native snapshots have prefixed keys again")

        XCTAssertEqual(sctl(["run", "--rm", "skiff/busybox:test", "m1", "/bin/sh", "-c", "echo overlay-ok"], "overlayfs").stdout, "overlay-ok\n")
        XCTAssertEqual(sctl(["-n", "nat", "run", "--rm", "skiff/busybox:test", "m1", "/bin/sh", "-c", "echo native-ok"], "native").stdout, "native-ok\n")
        let check = Cmd.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                print(db.execute("PRAGMA user_version").fetchone()[0],
                      db.execute("SELECT count(*) FROM snapshots WHERE key LIKE 'native:%' OR parent LIKE 'native:%'").fetchone()[0],
                      sorted(set(r[0] for r in db.execute("SELECT snapshotter FROM snapshots"))))
                """, work + "/root/meta.db"
            ])
        XCTAssertEqual(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "5 0 ['native', 'overlayfs']", check.stderr)
        // Only the committed layer is left in each: run --rm took its active snapshot.
        XCTAssertEqual(sctl(["snapshots", "ls"], "overlayfs").stdout.split(separator: "\n").count, 2)
        XCTAssertEqual(sctl(["-n", "nat", "snapshots", "ls"], "native").stdout.split(separator: "\n").count, 2)
    }

    /// A zstd-compressed layer (OCI `tar+zstd`), unpacked and run; a corrupt one is refused.
    func testZstdLayer() throws {
        guard Env.which("zstd") != nil else { throw XCTSkip("zstd is not installed (apt-get install zstd)") }
        let py = """
            import hashlib, io, json, subprocess, sys, tarfile
            src, dst, corrupt = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
            t = tarfile.open(src)
            blobs = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
            idx = json.loads(blobs["index.json"]); md = idx["manifests"][0]["digest"][7:]
            man = json.loads(blobs["blobs/sha256/" + md])
            import gzip
            raw = gzip.decompress(blobs["blobs/sha256/" + man["layers"][0]["digest"][7:]])
            z = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
            if corrupt: z = z[:len(z) // 2] + bytes([z[len(z) // 2] ^ 0xff]) + z[len(z) // 2 + 1:]
            dg = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
            man["layers"] = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": dg(z), "size": len(z)}]
            mb = json.dumps(man).encode()
            idx["manifests"][0].update({"digest": dg(mb), "size": len(mb)})
            idx["manifests"][0]["annotations"] = {"io.containerd.image.name": "docker.io/skiff/zstd:" + ("bad" if corrupt else "1")}
            out = tarfile.open(dst, "w")
            def add(n, b):
                i = tarfile.TarInfo(n); i.size = len(b); out.addfile(i, io.BytesIO(b))
            add("oci-layout", blobs["oci-layout"]); add("index.json", json.dumps(idx).encode())
            add("blobs/sha256/" + man["config"]["digest"][7:], blobs["blobs/sha256/" + man["config"]["digest"][7:]])
            add("blobs/sha256/" + dg(z)[7:], z); add("blobs/sha256/" + dg(mb)[7:], mb)
            out.close()
            """
        // The bad one in its own namespace: with the same diff ID, a layer unpacked once is shared.
        for (corrupt, file, ns) in [("0", work + "/zstd.tar", "default"), ("1", work + "/zstd-bad.tar", "bad")] {
            XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", py, image, file, corrupt]).code, 0)
            XCTAssertEqual(ctl(["-n", ns, "images", "import", file]).code, 0)
        }
        var r = ctl(["run", "--rm", "skiff/zstd:1", "z1", "/bin/skiff-payload", "echo", "zstd-ok"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("zstd-ok"))
        r = ctl(["-n", "bad", "run", "--rm", "skiff/zstd:bad", "z2", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("zstd") || r.stderr.contains("diff ID"), r.stderr)
        XCTAssertEqual(ctl(["-n", "bad", "snapshots", "ls"]).stdout.split(separator: "\n").count, 1, "no partial layer")
    }

    func testBadInputFailsClearlyAndLeavesNothing() throws {
        XCTAssertEqual(ctl(["images", "import", image]).code, 0)
        var r = ctl(["run", "--rm", "skiff/nope:1", "x1", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("image \"docker.io/skiff/nope:1\": not found"), r.stderr)
        r = ctl(["run", "--rm", "UPPER/Case", "x1", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("invalid reference format"), r.stderr)
        r = ctl(["run", "--rm", "skiff/busybox:test", "bad/id", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("invalid container id"), r.stderr)
        // A command that does not exist in the image: the runtime's error, nothing left.
        r = ctl(["run", "--rm", "skiff/busybox:test", "x2", "/no/such/binary"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("/no/such/binary"), r.stderr)
        XCTAssertEqual(ctl(["containers", "ls"]).stdout.split(separator: "\n").count, 1)
        XCTAssertFalse(ctl(["snapshots", "ls"]).stdout.contains("active"))
        XCTAssertEqual(Host.mounts(containing: work), [])
        XCTAssertTrue(Host.processes(mentioning: work + "/state").isEmpty, "no shim left")

        // A blob whose content does not match its name is refused: no image appears.
        let bad = work + "/bad.tar"
        try corruptArchive(from: image, to: bad)
        r = ctl(["-n", "bad", "images", "import", bad])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("digest mismatch"), r.stderr)
        XCTAssertEqual(ctl(["-n", "bad", "images", "ls", "-q"]).stdout, "")

        // A layer that writes outside its directory fails the unpack, and no layer is kept.
        let evil = work + "/evil.tar"
        // Also a GNU base-256 uid of 2^40 (skiffctl died of SIGILL on it) and whiteouts of "."
        // and ".." (".wh..." removed the snapshot's own directory).
        for (kind, message) in [
            ("symlink", "symlink"), ("dotdot", "escapes"), ("hardlink-up", "escapes"), ("hardlink-abs", "lacks"),
            ("bigid", "uid field 1099511627776 is out of range"), ("wh-dot", "is not a file name"),
            ("wh-dotdot", "is not a file name"), ("nul-name", "holds a NUL byte"),
            ("nul-link", "holds a NUL byte")
        ] {
            XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", Self.evilImage, evil, kind]).code, 0)
            XCTAssertEqual(ctl(["-n", "evil-" + kind, "images", "import", evil]).code, 0)
            r = ctl(["-n", "evil-" + kind, "run", "--rm", "evil/escape:1", "e1", "/bin/true"])
            XCTAssertNotEqual(r.code, 0, kind)
            XCTAssertTrue(r.stderr.contains(message), kind + ": " + r.stderr)
            XCTAssertEqual(ctl(["-n", "evil-" + kind, "snapshots", "ls"]).stdout.split(separator: "\n").count, 1, "no partial snapshot")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/escaped"))

        // A layer's own overlayfs control xattrs (redirect, metacopy) are not written: the
        // mount would follow them to files the directory does not hold. Other xattrs are.
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", Self.evilImage, evil, "overlay-xattr"]).code, 0)
        XCTAssertEqual(ctl(["-n", "evil-ovl", "images", "import", evil]).code, 0)
        ctl(["-n", "evil-ovl", "run", "--rm", "evil/escape:1", "e1", "/bin/true"])  // unpacks (the image has no /bin/true)
        let pub = Cmd.run("/usr/bin/find", [work + "/root/snapshots", "-name", "pub", "-type", "d"]).stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertFalse(pub.isEmpty)
        let xattrs = Cmd.run("/usr/bin/python3", ["-c", "import os,sys; print(sorted(os.listxattr(sys.argv[1])))", pub])
        XCTAssertEqual(xattrs.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "['user.keep']", xattrs.stderr)

        // Hard links that reach the host: one whose target path goes through a symlink out of
        // the layer (link(2) followed it and the entry's chown/chmod then made a host file
        // setuid 1234), one to a symlink whose target is a host file (chmod followed it).
        let canary = work + "/canary"
        try "secret1".write(toFile: canary, atomically: true, encoding: .utf8)
        chmod(canary, 0o600)
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", Self.evilImage, evil, "hardlink-through-symlink", work]).code, 0)
        XCTAssertEqual(ctl(["-n", "evil-hs", "images", "import", evil]).code, 0)
        r = ctl(["-n", "evil-hs", "run", "--rm", "evil/escape:1", "e1", "/bin/true"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("goes through a symlink"), r.stderr)
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", Self.evilImage, evil, "hardlink-to-symlink", canary]).code, 0)
        XCTAssertEqual(ctl(["-n", "evil-hl", "images", "import", evil]).code, 0)
        r = ctl(["-n", "evil-hl", "run", "--rm", "evil/escape:1", "e1", "/bin/true"])
        // The layer unpacks (a hard link to a symlink is a plain hard link); the image has no program to run.
        XCTAssertFalse(r.stderr.contains("unpack"), r.stderr)
        XCTAssertTrue(r.stderr.contains("/bin/true"), r.stderr)
        let attrs = try FileManager.default.attributesOfItem(atPath: canary)
        XCTAssertEqual(attrs[.posixPermissions] as? Int, 0o600, "the host file's mode is unchanged")
        XCTAssertEqual(attrs[.ownerAccountID] as? Int, 0, "the host file's owner is unchanged")
        XCTAssertEqual(attrs[.referenceCount] as? Int, 1, "nothing links to the host file")
    }

    /// Flips a byte of the largest blob (the layer) in an OCI archive.
    func corruptArchive(from: String, to: String) throws {
        let py = """
            import sys, tarfile, io
            src, dst = sys.argv[1], sys.argv[2]
            with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
                members = t.getmembers()
                big = max(members, key=lambda m: m.size)
                for m in members:
                    data = t.extractfile(m).read() if m.isfile() else None
                    if m is big: data = data[:-1] + bytes([data[-1] ^ 1])
                    o.addfile(m, io.BytesIO(data) if data is not None else None)
            """
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", py, from, to]).code, 0)
    }

    /// An image whose layer tries one way out of its directory (argv[2]): a write through a
    /// symlink `link -> /tmp`, a `../escaped` name, or a hard link to `../../etc/passwd` or `/etc/passwd`.
    static let evilImage = """
        import gzip, hashlib, io, json, sys, tarfile
        raw = io.BytesIO()
        kind = sys.argv[2]
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT if kind == "bigid" else tarfile.PAX_FORMAT) as t:
            d = b"x"
            if kind == "bigid":
                i = tarfile.TarInfo("f"); i.size = 1; i.uid = 2 ** 40; t.addfile(i, io.BytesIO(d))
            elif kind == "overlay-xattr":
                i = tarfile.TarInfo("pub"); i.type = tarfile.DIRTYPE; i.mode = 0o755
                i.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/secret", "SCHILY.xattr.user.overlay.metacopy": "", "SCHILY.xattr.user.keep": "k"}
                t.addfile(i)
            elif kind in ("nul-name", "nul-link"):
                # pax records can carry a NUL: "..\\0x" passed the checks as a name and was ".." to rename(2)
                i = tarfile.TarInfo("x"); i.type = tarfile.SYMTYPE if kind == "nul-link" else tarfile.REGTYPE
                i.pax_headers = {"linkpath": "../\\0ok"} if kind == "nul-link" else {"path": "..\\0x"}
                if kind == "nul-link": i.linkname = "ok"
                t.addfile(i, io.BytesIO(b""))
            elif kind in ("wh-dot", "wh-dotdot"):
                i = tarfile.TarInfo("keep"); i.size = 1; t.addfile(i, io.BytesIO(d))
                i = tarfile.TarInfo(".wh.." if kind == "wh-dot" else ".wh..."); t.addfile(i, io.BytesIO(b""))
            elif kind == "symlink":
                i = tarfile.TarInfo("link"); i.type = tarfile.SYMTYPE; i.linkname = "/tmp"; t.addfile(i)
                i = tarfile.TarInfo("link/x"); i.size = 1; t.addfile(i, io.BytesIO(d))
            elif kind == "dotdot":
                i = tarfile.TarInfo("../escaped"); i.size = 1; t.addfile(i, io.BytesIO(d))
            elif kind == "hardlink-through-symlink":
                i = tarfile.TarInfo("hl"); i.type = tarfile.SYMTYPE; i.linkname = sys.argv[3]; t.addfile(i)
                i = tarfile.TarInfo("stolen"); i.type = tarfile.LNKTYPE; i.linkname = "hl/canary"; i.mode = 0o4777; i.uid = 1234; i.gid = 1234; t.addfile(i)
            elif kind == "hardlink-to-symlink":
                i = tarfile.TarInfo("s2"); i.type = tarfile.SYMTYPE; i.linkname = sys.argv[3]; t.addfile(i)
                i = tarfile.TarInfo("h2"); i.type = tarfile.LNKTYPE; i.linkname = "s2"; i.mode = 0o6777; i.uid = 1234; i.gid = 1234; t.addfile(i)
            else:
                i = tarfile.TarInfo("hl"); i.type = tarfile.LNKTYPE
                i.linkname = "../../etc/passwd" if kind == "hardlink-up" else "/etc/passwd"; t.addfile(i)
        layer_tar = raw.getvalue(); layer = gzip.compress(layer_tar, mtime=0)
        def dg(b): return "sha256:" + hashlib.sha256(b).hexdigest()
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                             "rootfs": {"type": "layers", "diff_ids": [dg(layer_tar)]}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dg(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg(layer), "size": len(layer)}]}).encode()
        index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": dg(manifest), "size": len(manifest), "annotations": {"io.containerd.image.name": "docker.io/evil/escape:1"}}]}).encode()
        with tarfile.open(sys.argv[1], "w") as t:
            for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + \\
                    [("blobs/sha256/" + dg(b)[7:], b) for b in (layer, config, manifest)]:
                i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
        """
}

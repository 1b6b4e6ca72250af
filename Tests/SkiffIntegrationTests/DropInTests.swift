import Foundation
import XCTest

/// skiff in place of runc under real peers from Debian: a private containerd 1.6 driving it
/// through its runc shim (`ctr run --runc-binary`), and podman (`--runtime`) through conmon.
final class DropInTests: ImageTestCase {
    func testContainerdRuncShimDrivesSkiff() throws {
        guard let ctrBin = Env.which("ctr"), Env.which("containerd-shim-runc-v2") != nil else {
            throw XCTSkip("containerd is not installed (apt-get install containerd)")
        }
        let containerd = try PrivateContainerd(work: work)
        defer { containerd.stop() }
        let sock = containerd.sock
        func ctr(_ args: [String]) -> CmdResult { containerd.ctr(args) }

        var r = ctr(["image", "import", image])
        XCTAssertEqual(r.code, 0, r.stderr)
        r = ctr(["run", "--runc-binary", Env.skiff, "--rm", ref, "once", "/bin/skiff-payload", "echo", "hello-ctr", "exit", "3"])
        XCTAssertEqual(r.code, 3, r.stderr)
        XCTAssertTrue(r.stdout.contains("hello-ctr"), r.stdout)

        // A tty run: containerd's shim passes --console-socket; `script` gives ctr a terminal.
        if let script = Env.which("script") {
            let cmd =
                ([
                    ctrBin, "--address", sock, "run", "-t", "--rm", "--runc-binary", Env.skiff, ref, "tty1",
                    "/bin/skiff-payload", "tty", "exit", "6"
                ]).joined(separator: " ")
            r = Cmd.run(script, ["-qec", cmd, "/dev/null"], timeout: 60)
            XCTAssertEqual(r.code, 6, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("isatty=1"), r.stdout)
        }

        containerd.checkDetachedTask([], runtime: ["--runc-binary", Env.skiff], image: ref, metrics: false)
    }

    func testPodmanRunsWithSkiffAsRuntime() throws {
        guard let podman = Env.which("podman"), Env.which("conmon") != nil else {
            throw XCTSkip("podman is not installed (apt-get install podman)")
        }
        let base = [
            "--root", work + "/proot", "--runroot", work + "/prun", "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", Env.skiff,
            "--runtime-flag", "skip-unavailable-cgroups"
        ]
        // podman (cgroupfs manager) leaves libpod_parent in every hierarchy: removed when empty.
        defer { Cmd.sh("for d in /sys/fs/cgroup/*/libpod_parent; do find \"$d\" -depth -type d -exec rmdir {} \\; ; done 2>/dev/null") }
        var r = Cmd.run(podman, base + ["load", "-i", image], timeout: 120)
        XCTAssertEqual(r.code, 0, r.stderr)
        // This host lacks CAP_SYS_RESOURCE: ask for rlimits below the current hard ones (runc needs the same).
        r = Cmd.run(
            podman,
            base + [
                "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                ref, "/bin/skiff-payload", "id", "echo", "from-podman", "exit", "4"
            ], timeout: 120)
        XCTAssertEqual(r.code, 4, r.stderr)
        XCTAssertTrue(r.stdout.contains("from-podman"), r.stdout + r.stderr)
        XCTAssertEqual(r.values["uid"], "0")
        // Detached, then exec through conmon (exec --process --detach --pid-file), then stop.
        r = Cmd.run(
            podman,
            base + [
                "run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                ref, "/bin/sleep", "60"
            ], timeout: 120)
        XCTAssertEqual(r.code, 0, r.stderr)
        let cid = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        r = Cmd.run(podman, base + ["exec", cid, "/bin/skiff-payload", "pid", "echo", "exec-ok", "exit", "5"], timeout: 60)
        XCTAssertEqual(r.code, 5, r.stderr + Cmd.run(podman, base + ["ps", "-a"]).stdout)
        XCTAssertTrue(r.stdout.contains("exec-ok"))
        XCTAssertNotEqual(r.values["pid"], "1")
        XCTAssertEqual(Cmd.run(podman, base + ["stop", "-t", "1", cid], timeout: 60).code, 0)
        Cmd.run(podman, base + ["rm", "-a", "-f"], timeout: 60)
    }
}

import Foundation
import XCTest

/// cgroup v2 limits cannot be tested on a hybrid host: boot a throw-away QEMU guest whose only
/// hierarchy is cgroup v2 (scripts/vm/vm-run.sh) and run real containers there.
final class CgroupV2GuestTests: XCTestCase {
    func testLimitsAreEnforcedInAPureCgroupV2Guest() throws {
        try Env.requireRoot()
        guard Env.which("qemu-system-x86_64") != nil else {
            throw XCTSkip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        let vm = Env.packageRoot + "/scripts/vm/vm-run.sh"
        let script = Env.packageRoot + "/scripts/vm/guest-cgroup-tests.sh"
        // The guest sees the host root read-only but has its own /tmp and /run: share the checkout
        // (binary, rootfs, scripts) when it lives there, as CI's fresh clone may.
        let candidates = Set([
            Env.packageRoot, (Env.rootfs as NSString).deletingLastPathComponent, (Env.skiff as NSString).deletingLastPathComponent,
            (Env.shim as NSString).deletingLastPathComponent
        ])
        .filter { $0.hasPrefix("/tmp/") || $0.hasPrefix("/run/") }
        var share: [String] = []
        for dir in candidates.sorted() where !candidates.contains(where: { $0 != dir && dir.hasPrefix($0 + "/") }) {
            share += ["--share", dir]
        }
        let r = Cmd.run(
            "/bin/bash", [vm, "--timeout", "600"] + share + ["--", "/bin/sh", script, Env.skiff, Env.rootfs, Env.shim, Env.crictl ?? ""], timeout: 700)
        if r.code == 125 && !r.stdout.contains("PASS") {
            throw XCTSkip("the cgroup v2 guest could not boot here: \(r.stderr.suffix(600))")
        }
        let passes = r.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS: ") }
        let failures = r.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL: ") }
        XCTAssertEqual(failures, [], r.stdout + r.stderr)
        XCTAssertEqual(r.code, 0, r.stdout + r.stderr)
        for expected in [
            "pure cgroup v2", "memory.max=", "OOM-killed", "pids.max=10", "cpu.max=", "cpu.weight", "io.max", "update: memory.max",
            "update --resources", "events --stats", "OOM kill", "devices eBPF", "state reports oomKilled", "ExeGuard"
        ]
            + (Env.which("containerd") != nil ? ["shim Stats", "shim OOM"] : [])
            // Kubernetes' view: crictl through containerd's CRI plugin, a container over its memory limit.
            + (Env.which("containerd") != nil && Env.which("runc") != nil && Env.crictl != nil
                ? ["CRI OOMKilled (runc handler)", "CRI OOMKilled (skiff handler)"] : [])
            // The systemd cgroup driver: without systemd (cgroupfs, a warning), then with systemd
            // running in the guest: a transient scope through D-Bus, from skiff, from the shim
            // (SystemdCgroup), and runc's scope for the same config.
            + [
                "systemd driver without systemd", "skiff-sd1.scope through D-Bus", "delete stops the scope", "OOM-killed scope's id is created again",
                "update sets the unit's MemoryMax"
            ]
            + (Env.which("containerd") != nil ? ["systemd driver through the shim (SystemdCgroup)", "the scope is gone after task delete"] : [])
            + (Env.which("runc") != nil ? ["runc makes the same unit"] : [])
        {
            XCTAssertTrue(passes.contains { $0.contains(expected) }, "missing PASS for \(expected):\n\(r.stdout)")
        }
    }
}

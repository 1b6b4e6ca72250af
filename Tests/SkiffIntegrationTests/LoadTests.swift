import Foundation
import XCTest

/// Many containers at once, and many failures in a row: everything reaped, nothing leaked.
final class LoadTests: ImageTestCase {
    /// Runs `body(i)` for 0..<count, `width` at a time.
    func concurrently(_ count: Int, width: Int = 10, _ body: @escaping @Sendable (Int) -> Void) {
        DispatchQueue.concurrentPerform(iterations: width) { worker in
            for i in stride(from: worker, to: count, by: width) { body(i) }
        }
    }

    func leftovers(_ prefix: String, stateRoot: String) -> [String] {
        var out: [String] = []
        out += Host.mounts(containing: prefix)
        out += Host.processes(mentioning: prefix).map { "process \($0)" }
        if let cg = Host.cgroupRoot { out += ((try? FileManager.default.contentsOfDirectory(atPath: cg)) ?? []).filter { $0.hasPrefix(prefix) } }
        out += ((try? FileManager.default.contentsOfDirectory(atPath: stateRoot)) ?? []).map { "state \($0)" }
        return out
    }

    /// 100 containers created and started through `skiff`, 10 at a time, then killed and deleted.
    func testHundredContainersThroughSkiff() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        b.args(["/bin/sleep", "60"])
        b.linux["cgroupsPath"] = nil  // the default: one cgroup per container id
        try b.write()
        let prefix = "ld" + UUID().uuidString.prefix(6).lowercased()
        let failures = Failures()
        concurrently(100) { i in
            let r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "run", "-d", "--bundle", b.dir, "\(prefix)-\(i)"], timeout: 60, cwd: b.dir)
            if r.code != 0 { failures.add("run \(i): \(r.stderr)") }
        }
        XCTAssertEqual(failures.list, [])
        let running = Cmd.run(Env.skiff, ["--root", b.stateRoot, "list", "-q"]).stdout.split(separator: "\n")
        XCTAssertEqual(running.count, 100)
        concurrently(100) { i in
            let r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "delete", "--force", "\(prefix)-\(i)"], timeout: 60)
            if r.code != 0 { failures.add("delete \(i): \(r.stderr)") }
        }
        XCTAssertEqual(failures.list, [])
        XCTAssertEqual(leftovers(prefix, stateRoot: b.stateRoot), [])
        XCTAssertTrue(
            Host.processes(mentioning: "sleep 60").filter { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "").contains(prefix)
            }.isEmpty)
    }

    /// 1,000 creates that fail (500 in validation, 500 inside the init) leave nothing behind.
    func testThousandFailingCreatesLeaveNothing() throws {
        let b = try TestBundle()
        defer { b.cleanup() }
        let prefix = "fl" + UUID().uuidString.prefix(6).lowercased()
        b.linux["cgroupsPath"] = nil
        for (kind, n) in [("validation", 500), ("init", 500)] {
            if kind == "validation" {
                b.process["rlimits"] = [["type": "RLIMIT_NOT_A_THING", "soft": 1, "hard": 1]]
            } else {
                b.process.removeValue(forKey: "rlimits")
                b.args(["/no/such/binary"])
            }
            try b.write()
            var codes = Set<Int32>()
            for i in 0..<n {
                codes.insert(Cmd.run(Env.skiff, ["--root", b.stateRoot, "create", "--bundle", b.dir, "\(prefix)-\(kind)-\(i)"], cwd: b.dir).code)
            }
            XCTAssertEqual(codes, [1], kind)
        }
        XCTAssertEqual(leftovers(prefix, stateRoot: b.stateRoot), [])
    }

    /// The config fuzzer's corpus (fixtures/fuzz/spec: mutated real configs, most of them broken)
    /// through `skiff create` end to end, as root. Each input either creates a container or is
    /// refused with a message and exit 1: no signal, no silence. Hooks are removed (they run host
    /// programs), and the root path (a private copy), cgroup and rootfs propagation are pinned, so
    /// a mutation cannot reach outside the test; everything else is the corpus' bytes. Afterwards
    /// `delete --force` leaves no process, mount, cgroup or state directory.
    func testConfigCorpusThroughCreate() throws {
        try Env.requireRoot()
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        let corpus = dir.path + "/fixtures/fuzz/spec", examples = dir.path + "/runtime-spec/examples"
        // The fuzzer's seeds (runtime-spec/examples) too: the mutants are nearly all refused.
        let files =
            try FileManager.default.contentsOfDirectory(atPath: corpus).sorted().map { corpus + "/" + $0 }
            + FileManager.default.contentsOfDirectory(atPath: examples).sorted().map { examples + "/" + $0 }
        XCTAssertGreaterThan(files.count, 100)
        let b = try TestBundle()
        defer { b.cleanup() }
        // A private rootfs: mountpoints and device nodes a mutant asks for land in the test's
        // directory, not in the shared fixture.
        let rootfs = b.base + "/rootfs"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, rootfs]).code, 0)
        let prefix = "fz" + UUID().uuidString.prefix(6).lowercased()
        var created = 0, refused = 0
        var bad: [String] = []
        for (i, name) in files.enumerated() {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: name))
            if var cfg = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] {
                cfg.removeValue(forKey: "hooks")
                if var root = cfg["root"] as? [String: Any] { root["path"] = rootfs; cfg["root"] = root }
                if var linux = cfg["linux"] as? [String: Any] {
                    linux["cgroupsPath"] = "/\(prefix)-\(i)"
                    linux.removeValue(forKey: "rootfsPropagation")
                    cfg["linux"] = linux
                }
                bytes = try JSONSerialization.data(withJSONObject: cfg)
            }
            try bytes.write(to: URL(fileURLWithPath: b.dir + "/config.json"))
            let id = "\(prefix)-\(i)"
            let r = Cmd.run(Env.skiff, ["--root", b.stateRoot, "create", "--bundle", b.dir, id], timeout: 30, cwd: b.dir)
            switch r.code {
            case 0: created += 1
            case 1 where !r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty: refused += 1
            default: bad.append("\((name as NSString).lastPathComponent): exit \(r.code): \(r.stderr.prefix(200))")
            }
            let d = Cmd.run(Env.skiff, ["--root", b.stateRoot, "delete", "--force", id])
            if d.code != 0 { bad.append("\((name as NSString).lastPathComponent): delete --force: \(d.stderr.prefix(200))") }
        }
        XCTAssertEqual(bad, [])
        XCTAssertGreaterThan(created, 0, "no corpus config made a container")
        XCTAssertGreaterThan(refused, 0)
        XCTAssertEqual(leftovers(prefix, stateRoot: b.stateRoot), [])
        print("config corpus through create: \(files.count) inputs, \(created) created, \(refused) refused")
    }

    /// 100 `skiffctl run --rm`, 10 at a time, against one store: SQLite and the shims cope, and
    /// nothing stays (no container, active snapshot, shim, mount).
    func testHundredRunsThroughSkiffctl() throws {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let base = [Env.skiffctl, "--root", work + "/root", "--state", work + "/state"]
        XCTAssertEqual(Cmd.run(base[0], Array(base.dropFirst()) + ["images", "import", image], env: env).code, 0)
        let failures = Failures()
        let e = env
        concurrently(100) { i in
            let r = Cmd.run(
                base[0], Array(base.dropFirst()) + ["run", "--rm", "skiff/busybox:test", "m\(i)", "/bin/sh", "-c", "exit \(i % 7)"],
                timeout: 120, env: e)
            if r.code != Int32(i % 7) { failures.add("run \(i): exit \(r.code) \(r.stderr)") }
        }
        XCTAssertEqual(failures.list, [])
        XCTAssertEqual(Cmd.run(base[0], Array(base.dropFirst()) + ["containers", "ls"]).stdout.split(separator: "\n").count, 1)
        XCTAssertFalse(Cmd.run(base[0], Array(base.dropFirst()) + ["snapshots", "ls"]).stdout.contains("active"))
        XCTAssertEqual(Host.mounts(containing: work), [])
        XCTAssertTrue(Host.processes(mentioning: work + "/state").isEmpty, "no shim left")
    }
}

/// Failures collected from concurrent workers.
final class Failures: @unchecked Sendable {
    let lock = NSLock()
    var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var list: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

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
        b.linux["cgroupsPath"] = nil // the default: one cgroup per container id
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
        XCTAssertTrue(Host.processes(mentioning: "sleep 60").filter { pid in
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
                b.process["capabilities"] = ["bounding": ["CAP_NOT_A_THING"]]
            } else {
                b.process.removeValue(forKey: "capabilities")
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
            let r = Cmd.run(base[0], Array(base.dropFirst()) + ["run", "--rm", "skiff/busybox:test", "m\(i)", "/bin/sh", "-c", "exit \(i % 7)"],
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

import Foundation
import XCTest

/// Lifecycle semantics of the runtime spec and runc, run against skiff and, where it is
/// installed, against runc itself so a difference in behaviour fails a test.
final class LifecycleTests: XCTestCase {
    func scenario(runtime: String) throws {
        let b = try TestBundle(runtime: runtime)
        defer { b.cleanup() }
        b.payload("sleep", "60")
        let cg = b.linux["cgroupsPath"] as! String

        var r = b.rt(["create", "--bundle", b.dir, "--pid-file", "c1.pid", "c1"])
        XCTAssertEqual(r.code, 0, "\(runtime) create: \(r.stderr)")
        let pidText = try String(contentsOfFile: b.dir + "/c1.pid", encoding: .utf8)
        XCTAssertFalse(pidText.hasSuffix("\n"), "pid file has no newline")
        let pid = try XCTUnwrap(Int32(pidText))
        XCTAssertEqual(kill(pid, 0), 0, "init must be alive after create")

        var st = try state(b, "c1")
        XCTAssertEqual(st["status"] as? String, "created")
        XCTAssertEqual(st["pid"] as? Int, Int(pid))
        XCTAssertEqual(st["bundle"] as? String, b.dir)
        XCTAssertEqual(st["id"] as? String, "c1")
        XCTAssertNotNil(st["ociVersion"])

        r = b.rt(["create", "--bundle", b.dir, "c1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("already exists"), "\(runtime): \(r.stderr)")

        XCTAssertEqual(b.rt(["start", "c1"]).code, 0)
        st = try state(b, "c1")
        XCTAssertEqual(st["status"] as? String, "running")

        r = b.rt(["start", "c1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("cannot start an already running container"), "\(runtime): \(r.stderr)")

        r = b.rt(["delete", "c1"])
        XCTAssertNotEqual(r.code, 0, "delete of a running container needs --force")
        XCTAssertTrue(r.stderr.contains("not stopped"), "\(runtime): \(r.stderr)")

        XCTAssertEqual(b.rt(["kill", "c1", "KILL"]).code, 0)
        try waitFor { (try? self.state(b, "c1")["status"] as? String) == "stopped" }
        st = try state(b, "c1")
        XCTAssertEqual(st["pid"] as? Int, 0, "stopped ⇒ pid 0")

        r = b.rt(["kill", "c1", "TERM"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("container not running"), "\(runtime): \(r.stderr)")

        r = b.rt(["start", "c1"])
        XCTAssertNotEqual(r.code, 0, "start of a stopped container fails")

        XCTAssertEqual(b.rt(["delete", "c1"]).code, 0)
        r = b.rt(["state", "c1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("does not exist"), "\(runtime): \(r.stderr)")
        r = b.rt(["kill", "nope", "9"])
        XCTAssertTrue(r.stderr.contains("does not exist"), "\(runtime): \(r.stderr)")
        XCTAssertEqual(b.rt(["delete", "--force", "nope"]).code, 0, "delete --force of an unknown id succeeds")

        // Signals by number and by name; delete of a created container kills it.
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c2"]).code, 0)
        XCTAssertEqual(b.rt(["kill", "c2", "9"]).code, 0)
        try waitFor { (try? self.state(b, "c2")["status"] as? String) == "stopped" }
        XCTAssertEqual(b.rt(["delete", "c2"]).code, 0)
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c3"]).code, 0)
        XCTAssertEqual(b.rt(["delete", "--force", "c3"]).code, 0)

        XCTAssertEqual(b.rt(["list", "--format", "json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "null")
        if let root = Host.cgroupRoot, runtime == Env.skiff {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + cg), "cgroup left behind")
        }
    }

    /// `delete --force` takes a container down from any state: paused, and half-created (its
    /// `create` killed with SIGKILL while a createRuntime hook runs, the init already forked and
    /// the cgroup made). Nothing may stay: process, cgroup, state directory.
    func testDeleteForceFromPausedAndHalfCreated() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "60")
        let cg = b.linux["cgroupsPath"] as! String
        XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "p1"]).code, 0)
        XCTAssertEqual(b.rt(["pause", "p1"]).code, 0)
        XCTAssertEqual(try state(b, "p1")["status"] as? String, "paused")
        let paused = try XCTUnwrap(try state(b, "p1")["pid"] as? Int)
        var r = b.rt(["delete", "--force", "p1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(Host.processAlive(pid_t(paused)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/p1"))

        let marker = "skiff-half-created-\(getpid())"
        b.config["hooks"] = ["createRuntime": [["path": "/bin/sh", "args": ["sh", "-c", "sleep 30; : \(marker)"]]]]
        try b.write()
        let create = Background([Env.skiff, "--root", b.stateRoot, "create", "--bundle", b.dir, "h1"])
        var hook: [Int32] = []
        for _ in 0..<500 where hook.isEmpty { hook = Host.processes(mentioning: marker); usleep(10_000) }
        defer { for p in Host.processes(mentioning: marker) { kill(p, SIGKILL) } }
        XCTAssertFalse(hook.isEmpty, "the hook did not start")
        let st = try state(b, "h1")
        XCTAssertEqual(st["status"] as? String, "creating", "a create in progress reports creating")
        // The init is in the container's cgroup from its birth (CLONE_INTO_CGROUP).
        let procs = (try? String(contentsOfFile: (Host.cgroupRoot ?? "") + cg + "/cgroup.procs", encoding: .utf8)) ?? ""
        let inits = procs.split(separator: "\n").compactMap { pid_t($0) }
        XCTAssertFalse(inits.isEmpty, "no process in the half-created container's cgroup")
        create.stop(SIGKILL)
        XCTAssertEqual(try state(b, "h1")["status"] as? String, "stopped", "a create that died is not creating forever")
        r = b.rt(["delete", "--force", "h1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        for _ in 0..<200 where inits.contains(where: Host.processAlive) { usleep(10_000) }
        XCTAssertFalse(inits.contains(where: Host.processAlive), "the half-created container's init is still alive")
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/h1"), "state directory left")
        if let root = Host.cgroupRoot {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + cg), "cgroup left behind")
        }
        XCTAssertEqual(b.rt(["list", "-q"]).stdout, "")
    }

    func state(_ b: TestBundle, _ id: String) throws -> [String: Any] {
        let r = b.rt(["state", id])
        guard r.code == 0 else { throw NSError(domain: "state", code: Int(r.code), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
        return try JSONSerialization.jsonObject(with: r.stdout.data(using: .utf8)!) as! [String: Any]
    }

    func waitFor(_ cond: () throws -> Bool) throws {
        for _ in 0..<300 { if try cond() { return }; usleep(10_000) }
        XCTFail("condition not reached in 3 s")
    }

    func testLifecycleSkiff() throws {
        try Env.requireRoot()
        try scenario(runtime: Env.skiff)
    }

    func testLifecycleRuncForComparison() throws {
        try Env.requireRoot()
        guard let runc = Env.which("runc") else { throw XCTSkip("runc is not installed (apt-get install runc)") }
        try scenario(runtime: runc)
    }

    func testSignalNamesAndNumbers() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        let out = b.base + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        b.addMount(["destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]])
        for (i, sig) in ["USR1", "SIGUSR1", "10", "usr1"].enumerated() {
            // The payload as pid 1 installs handlers, so the signal is delivered and reported.
            b.args(["/bin/sh", "-c", "exec /bin/skiff-payload wait-signal > /out/sig\(i)"])
            XCTAssertEqual(b.rt(["run", "-d", "--bundle", b.dir, "s\(i)"]).code, 0)
            try waitFor { ((try? String(contentsOfFile: out + "/sig\(i)", encoding: .utf8)) ?? "").contains("ready") }
            XCTAssertEqual(b.rt(["kill", "s\(i)", sig]).code, 0, sig)
            try waitFor { ((try? String(contentsOfFile: out + "/sig\(i)", encoding: .utf8)) ?? "").contains("signal=10") }
            XCTAssertEqual(b.rt(["delete", "--force", "s\(i)"]).code, 0)
        }
        let r = b.rt(["kill", "s0", "NOSUCHSIG"])
        XCTAssertNotEqual(r.code, 0)
    }

    func testRunDetachedAndForegroundSignalsForwarded() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "0.2", "exit", "7")
        XCTAssertEqual(b.rt(["run", "--detach", "--bundle", b.dir, "d1"]).code, 0)
        XCTAssertEqual(try state(b, "d1")["status"] as? String, "running")
        // run starts the container itself, through a pipe: no exec.fifo was ever made, and the
        // container is not startable again.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: b.stateRoot + "/d1").sorted(), ["config.json", "state.json"])
        let again = b.rt(["start", "d1"])
        XCTAssertNotEqual(again.code, 0)
        XCTAssertTrue(again.stderr.contains("cannot start an already running container"), again.stderr)
        try waitFor { (try? self.state(b, "d1")["status"] as? String) == "stopped" }
        XCTAssertEqual(b.rt(["delete", "d1"]).code, 0)
        // --keep leaves a stopped container behind.
        XCTAssertEqual(b.rt(["run", "--keep", "--bundle", b.dir, "k1"]).code, 7)
        XCTAssertEqual(try state(b, "k1")["status"] as? String, "stopped")
    }

    /// A foreground `run` stopped while its container was deleted and the id created again
    /// leaves the new container alone when it resumes (it used to delete the new one's state
    /// and leave its init running).
    func testAStaleForegroundRunLeavesANewContainerOfItsIdAlone() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "30")
        try b.write()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Env.skiff)
        p.arguments = ["--root", b.stateRoot, "run", "--bundle", b.dir, "c3"]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        try waitFor { (try? self.state(b, "c3")["status"] as? String) == "running" }
        kill(p.processIdentifier, SIGSTOP)
        XCTAssertEqual(b.rt(["kill", "c3", "KILL"]).code, 0)
        XCTAssertEqual(b.rt(["delete", "--force", "c3"]).code, 0)
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c3"]).code, 0)
        let newPid = try state(b, "c3")["pid"] as? Int
        kill(p.processIdentifier, SIGCONT)
        p.waitUntilExit()
        XCTAssertEqual(try state(b, "c3")["pid"] as? Int, newPid, "the new c3 is still there")
        XCTAssertEqual(try state(b, "c3")["status"] as? String, "created")
        XCTAssertEqual(b.rt(["delete", "--force", "c3"]).code, 0)
    }

    func testForegroundRunForwardsSignalsToTheContainer() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("wait-signal")
        try b.write()
        let out = b.base + "/out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Env.skiff)
        p.arguments = ["--root", b.stateRoot, "run", "--bundle", b.dir, "fg"]
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        try waitFor { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("ready") }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "the payload exits 0 after reporting the signal")
        XCTAssertTrue(try String(contentsOfFile: out, encoding: .utf8).contains("signal=15"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/fg"), "run deletes the container")
    }

    func testConcurrentOperationsOnOneContainerAreSerialized() throws {
        try Env.requireRoot()
        let b = try TestBundle()
        defer { b.cleanup() }
        b.payload("sleep", "30")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        // Two starts race: exactly one wins.
        final class Codes: @unchecked Sendable {
            let lock = NSLock()
            var values: [Int32] = []
            func add(_ c: Int32) { lock.lock(); values.append(c); lock.unlock() }
        }
        let codes = Codes()
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                codes.add(b.rt(["start", "c1"]).code)
                group.leave()
            }
        }
        group.wait()
        XCTAssertEqual(codes.values.sorted(), [0, 1])
    }

    func testVersionSpecAndFeatures() throws {
        let v = Cmd.run(Env.skiff, ["--version"])
        XCTAssertEqual(v.code, 0)
        XCTAssertTrue(v.stdout.hasPrefix("skiff version "))
        XCTAssertTrue(v.stdout.contains("\nspec: 1."))
        let f = Cmd.run(Env.skiff, ["features"])
        let obj = try JSONSerialization.jsonObject(with: f.stdout.data(using: .utf8)!) as! [String: Any]
        XCTAssertEqual(obj["ociVersionMin"] as? String, "1.0.0")
        let linux = obj["linux"] as! [String: Any]
        XCTAssertTrue((linux["namespaces"] as! [String]).contains("time"))
        let seccomp = linux["seccomp"] as! [String: Any]
        XCTAssertEqual(seccomp["enabled"] as? Bool, true)
        XCTAssertTrue((seccomp["actions"] as! [String]).contains("SCMP_ACT_NOTIFY"))
        XCTAssertTrue((seccomp["operators"] as! [String]).contains("SCMP_CMP_MASKED_EQ"))
        XCTAssertEqual((linux["cgroup"] as! [String: Any])["v2"] as? Bool, true)
        XCTAssertEqual(((linux["mountExtensions"] as! [String: Any])["idmap"] as! [String: Any])["enabled"] as? Bool, false)
        XCTAssertTrue((obj["hooks"] as! [String]).contains("createContainer"))
        // The recursive options are applied (mount_setattr), so they are listed; tmpcopyup is not.
        let options = obj["mountOptions"] as! [String]
        for o in ["rro", "rrw", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rrelatime", "rstrictatime", "rnosymfollow", "nosymfollow", "ro", "rbind"] {
            XCTAssertTrue(options.contains(o), o)
        }
        XCTAssertFalse(options.contains("tmpcopyup"))
        let dir = NSTemporaryDirectory() + "skiff-spec-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(Cmd.run(Env.skiff, ["spec", "-b", dir]).code, 0)
        XCTAssertNotEqual(Cmd.run(Env.skiff, ["spec", "-b", dir]).code, 0, "spec refuses to overwrite")
        XCTAssertEqual(Cmd.run(Env.skiff, ["spec", "--rootless", "--bundle", dir + "/r"]).code, 1, "missing bundle dir")
    }
}

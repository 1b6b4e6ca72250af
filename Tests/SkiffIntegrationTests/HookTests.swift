import Foundation
import XCTest

final class HookTests: XCTestCase {
    var b: TestBundle!
    var logDir: String { b.base + "/hooklog" }

    override func setUpWithError() throws {
        try Env.requireRoot()
        b = try TestBundle()
        try FileManager.default.createDirectory(atPath: b.base + "/hooklog", withIntermediateDirectories: true)
        b.addMount(["destination": "/hooklog", "type": "bind", "source": b.base + "/hooklog", "options": ["rbind", "rw"]])
    }

    override func tearDown() {
        b?.cleanup()
        if let b { XCTAssertEqual(Host.mounts(containing: b.base), []) }
    }

    /// A hook that appends "<kind> <state json> <env>" to the log; `inContainer` uses container paths.
    func hook(_ kind: String, inContainer: Bool = false) -> [String: Any] {
        let log = inContainer ? "/hooklog/log" : logDir + "/log"
        return ["path": "/bin/sh", "args": ["sh", "-c", "echo \"$0 $(cat) $HOOKVAR\" >> \(log)", kind], "env": ["HOOKVAR=v-\(kind)"]]
    }

    func entries() -> [(kind: String, state: [String: Any], env: String)] {
        let text = (try? String(contentsOfFile: logDir + "/log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { line in
            let kind = String(line.split(separator: " ")[0])
            let json = line[line.firstIndex(of: "{")!...line.lastIndex(of: "}")!]
            let env = String(line[line.index(after: line.lastIndex(of: "}")!)...]).trimmingCharacters(in: .whitespaces)
            let obj = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
            return (kind, obj, env)
        }
    }

    func testAllHooksRunInOrderWithStateOnStdin() throws {
        b.config["hooks"] = [
            "prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")], "startContainer": [hook("startContainer", inContainer: true)],
            "poststart": [hook("poststart")], "poststop": [hook("poststop")]
        ]
        b.payload("sleep", "0.3")
        b.config["annotations"] = ["org.test.k": "v"]
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        XCTAssertEqual(entries().map(\.kind), ["prestart", "createRuntime", "createContainer"])
        XCTAssertEqual(b.rt(["start", "c1"]).code, 0)
        usleep(500_000)
        let r = b.rt(["delete", "c1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let e = entries()
        XCTAssertEqual(e.map(\.kind), ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])
        XCTAssertEqual(e.map { $0.state["status"] as? String }, ["creating", "creating", "creating", "created", "running", "stopped"])
        XCTAssertEqual(e.map(\.env), e.map { "v-\($0.kind)" })
        for x in e {
            XCTAssertEqual(x.state["id"] as? String, "c1")
            XCTAssertEqual(x.state["bundle"] as? String, b.dir)
            XCTAssertEqual((x.state["annotations"] as? [String: String])?["org.test.k"], "v")
        }
        // Runtime-namespace hooks see the host pid; container-namespace hooks see pid 1.
        XCTAssertGreaterThan(e[0].state["pid"] as? Int ?? 0, 1)
        XCTAssertEqual(e[2].state["pid"] as? Int, 1)
        XCTAssertEqual(e[3].state["pid"] as? Int, 1)
    }

    func testHookThatIgnoresStdinDoesNotBreakTheRuntime() {
        // A large state (big annotation) makes the write hit EPIPE when the hook exits unread.
        b.config["annotations"] = ["big": String(repeating: "x", count: 1 << 20)]
        b.config["hooks"] = ["prestart": [["path": "/bin/true"]], "poststop": [["path": "/bin/true"]]]
        b.payload("echo", "ok")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, "ok\n")
    }

    func testFailingPrestartHookFailsCreateAndCleansUp() throws {
        b.config["hooks"] = ["prestart": [["path": "/bin/sh", "args": ["sh", "-c", "echo broken hook >&2; exit 3"]]]]
        b.payload("sleep", "10")
        let r = b.rt(["create", "--bundle", b.dir, "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("prestart hook #0"), r.stderr)
        XCTAssertTrue(r.stderr.contains("status 3"), r.stderr)
        XCTAssertTrue(r.stderr.contains("broken hook"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
        if let root = Host.cgroupRoot { XCTAssertFalse(FileManager.default.fileExists(atPath: root + (b.linux["cgroupsPath"] as! String))) }
        XCTAssertEqual(Host.processes(mentioning: b.dir), [])
    }

    func testFailingCreateContainerHookFailsCreate() {
        b.config["hooks"] = ["createContainer": [["path": "/bin/false"]]]
        b.payload("exit", "0")
        let r = b.run()
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("createContainer hook #0"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
    }

    /// A timeout too large to count in nanoseconds is as good as none: it used to overflow and
    /// trap create midway (exit 132), leaving its cgroup and files.
    func testAHugeHookTimeoutDoesNotCrashCreate() {
        b.config["hooks"] = ["prestart": [["path": "/bin/true", "timeout": 34_359_738_368]]]
        b.payload("exit", "0")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
    }

    func testFailingStartContainerHookFailsStart() {
        b.config["hooks"] = ["startContainer": [["path": "/bin/sh", "args": ["sh", "-c", "exit 4"]]]]
        b.payload("exit", "0")
        XCTAssertEqual(b.rt(["create", "--bundle", b.dir, "c1"]).code, 0)
        let r = b.rt(["start", "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("startContainer hook #0"), r.stderr)
        XCTAssertEqual(b.rt(["delete", "--force", "c1"]).code, 0)
        // `run` (its start barrier is a pipe, not exec.fifo) reports the same error, in the
        // foreground and detached, and leaves no container behind.
        for detach in [false, true] {
            let rr = b.rt(["run"] + (detach ? ["--detach"] : []) + ["--bundle", b.dir, "r1"])
            XCTAssertEqual(rr.code, 1, "detach \(detach)")
            XCTAssertTrue(rr.stderr.contains("startContainer hook #0"), rr.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/r1"), "detach \(detach)")
        }
    }

    func testHookLeavingADaemonBehindDoesNotHang() {
        // The hook exits at once but its background child keeps stdout open for 30 s.
        b.config["hooks"] = ["prestart": [["path": "/bin/sh", "args": ["sh", "-c", "sleep 30 & echo started"]]]]
        b.payload("exit", "0")
        let t0 = Date()
        XCTAssertEqual(b.run().code, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        Cmd.sh("pkill -f '^sleep 30$'")
    }

    func testHookTimeoutKillsTheHook() {
        b.config["hooks"] = ["createRuntime": [["path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1]]]
        b.payload("exit", "0")
        let t0 = Date()
        let r = b.rt(["create", "--bundle", b.dir, "c1"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("timeout"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
    }

    /// Runtime-spec 1.2 lifecycle steps 9 and 13: a failing poststart or poststop hook is a
    /// warning, and the hooks after it still run.
    func testFailingPoststartAndPoststopOnlyWarn() {
        b.config["hooks"] = ["poststart": [["path": "/bin/false"], hook("poststart")], "poststop": [["path": "/bin/false"], hook("poststop")]]
        b.payload("exit", "0")
        let r = b.run()
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("poststart hook #0"), r.stderr)
        XCTAssertTrue(r.stderr.contains("poststop hook #0"), r.stderr)
        XCTAssertEqual(entries().map(\.kind), ["poststart", "poststop"], "the second hook of each kind ran")
    }

    /// A hook without a timeout may run forever (as in runc); but when `create` is told to stop
    /// (SIGTERM) the hook and everything it started are killed, and create cleans up as after
    /// any failure. Before, the hook stayed behind on the host where nothing could reach it.
    func testStoppingCreateKillsItsHook() throws {
        let n = Int.random(in: 100_000...999_999)
        b.config["hooks"] = ["prestart": [["path": "/bin/sh", "args": ["sh", "-c", "sleep \(n) & sleep \(n); true"]]]]
        b.payload("exit", "0")
        try b.write()
        let create = Background([Env.skiff, "--root", b.stateRoot, "create", "--bundle", b.dir, "c1"])
        // The hook's shell and its two sleeps.
        for _ in 0..<500 where Host.processes(mentioning: "sleep \(n)").count < 3 { usleep(10_000) }
        XCTAssertEqual(Host.processes(mentioning: "sleep \(n)").count, 3, "the hook and its children run")
        kill(create.pid, SIGTERM)
        var st: Int32 = 0
        for _ in 0..<500 where waitpid(create.pid, &st, WNOHANG) == 0 { usleep(10_000) }
        create.pid = 0
        XCTAssertEqual(Host.processes(mentioning: "sleep \(n)"), [], "the hook's processes are gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"), "create cleaned up")
        if let cg = Host.cgroupRoot { XCTAssertFalse(FileManager.default.fileExists(atPath: cg + (b.linux["cgroupsPath"] as! String))) }
    }
}

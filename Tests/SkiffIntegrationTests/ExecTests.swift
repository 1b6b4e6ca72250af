import Foundation
import XCTest
import Glibc
import SkiffSys
import CSkiffSys

/// exec, ps, pause/resume and kill --all on a running container.
final class ExecTests: XCTestCase {
    var b: TestBundle!

    override func setUpWithError() throws {
        try Env.requireRoot()
        b = try TestBundle()
        b.payload("sleep", "60")
        let r = b.rt(["run", "-d", "--bundle", b.dir, "c1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        // Detached exec'd processes are re-parented to us, so their exit status can be collected.
        _ = skiff_prctl(SKIFF_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    }

    override func tearDown() {
        b?.cleanup()
        // Stop being a subreaper and reap what was re-parented to us.
        _ = skiff_prctl(SKIFF_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        while waitpid(-1, nil, WNOHANG) > 0 {}
        if let b { XCTAssertEqual(Host.mounts(containing: b.base), []) }
    }

    func listen(_ path: String) -> Int32 { (try? Sys.listenUnix(path, backlog: 4)) ?? -1 }

    func readAll(_ fd: Int32, until: String, seconds: Double = 5) -> String {
        var out = ""
        var buf = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(seconds)
        while !out.contains(until) && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { break }
                out += String(decoding: buf[0..<n], as: UTF8.self)
            }
        }
        return out
    }

    func waitStatus(_ pid: Int32) -> Int32 {
        var st: Int32 = 0
        for _ in 0..<500 {
            if waitpid(pid, &st, WNOHANG) == pid { return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f) }
            usleep(10_000)
        }
        return -1
    }

    /// {tty, no tty} × {detached, attached} × {exit 0, exit N, signal}
    func testExecMatrix() throws {
        let endings: [([String], Int32)] = [(["exit", "0"], 0), (["exit", "7"], 7), (["kill-self", "15"], 143)]
        for tty in [false, true] {
            for detach in [false, true] {
                for (i, (ending, code)) in endings.enumerated() {
                    let label = "tty=\(tty) detach=\(detach) expect=\(code)"
                    var args = ["exec"]
                    if tty { args.append("-t") }
                    var lfd: Int32 = -1
                    let pidFile = b.base + "/exec-\(tty)-\(detach)-\(i).pid"
                    if detach {
                        args += ["-d", "--pid-file", pidFile]
                        if tty {
                            let sock = b.base + "/c-\(i).sock"
                            lfd = listen(sock)
                            args += ["--console-socket", sock]
                        }
                    }
                    args += ["c1", "/bin/skiff-payload", "tty"] + ending
                    let r = b.rt(args)
                    if !detach {
                        XCTAssertEqual(r.code, code, "\(label): \(r.stderr)")
                        XCTAssertTrue(r.stdout.contains("isatty=\(tty ? 1 : 0)"), "\(label): \(r.stdout)")
                        continue
                    }
                    XCTAssertEqual(r.code, 0, "\(label): \(r.stderr)")
                    let pid = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8)), label)
                    if tty {
                        let conn = accept(lfd, nil, nil)
                        let master = try Sys.recvFd(conn).fd
                        XCTAssertTrue(readAll(master, until: "tty=").contains("isatty=1"), label)
                        close(master); close(conn); close(lfd)
                    }
                    XCTAssertEqual(waitStatus(pid), code, label)
                }
            }
        }
    }

    func testExecJoinsTheContainer() throws {
        let inside = b.rt(["exec", "c1", "/bin/skiff-payload", "ns", "pid", "hostname"])
        XCTAssertEqual(inside.code, 0, inside.stderr)
        let st = try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as! [String: Any]
        let initPid = st["pid"] as! Int
        for ns in ["mnt", "pid", "net", "uts", "ipc"] {
            let initNs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(initPid)/ns/\(ns)")
            XCTAssertEqual(inside.values["ns.\(ns)"], initNs, ns)
        }
        XCTAssertNotEqual(inside.values["pid"], "1")
        XCTAssertEqual(inside.values["hostname"], "skiff")
    }

    func testExecIntoAUserNamespaceContainer() throws {
        let u = try TestBundle()
        defer { u.cleanup() }
        u.addNamespace("user")
        u.linux["uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
        u.linux["gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
        u.payload("sleep", "30")
        XCTAssertEqual(u.rt(["run", "-d", "--bundle", u.dir, "u1"]).code, 0)
        let r = u.rt(["exec", "u1", "/bin/skiff-payload", "id", "ns", "cat", "/proc/self/uid_map"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["uid"], "0")
        XCTAssertNotEqual(r.values["ns.user"], Host.ns("user"))
        XCTAssertTrue(r.stdout.contains("100000"), r.stdout)
    }

    func testExecFlagsAndProcessFile() throws {
        var r = b.rt([
            "exec", "--user", "1000:1000", "-g", "5", "--cwd", "/tmp", "-e", "A=1", "--no-new-privs", "--cap", "CAP_KILL",
            "c1", "/bin/skiff-payload", "id", "cwd", "env", "seccomp", "caps"
        ])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.values["uid"], "1000")
        XCTAssertEqual(r.values["groups"], "5")
        XCTAssertEqual(r.values["cwd"], "/tmp")
        XCTAssertTrue(r.stdout.contains("env=A=1"))
        XCTAssertEqual(r.values["nonewprivs"], "1")
        // --cap goes to bounding, effective and permitted, never inheritable, and so not to
        // ambient either without inheritable caps in the config (runc ≥ 1.1.2, CVE-2022-29162):
        // a non-root process keeps none of it across its execve.
        XCTAssertEqual(r.values["capamb"], "0000000000000000")
        let pf = b.base + "/process.json"
        try #"{"user":{"uid":2000,"gid":2000},"args":["/bin/skiff-payload","id","exit","9"],"cwd":"/","env":["PATH=/bin"]}"#
            .write(toFile: pf, atomically: true, encoding: .utf8)
        r = b.rt(["exec", "--process", pf, "c1"])
        XCTAssertEqual(r.code, 9)
        XCTAssertEqual(r.values["uid"], "2000")
    }

    func testExecErrors() {
        var r = b.rt(["exec", "c1", "/no/such/binary"])
        XCTAssertEqual(r.code, 255)
        XCTAssertTrue(r.stderr.contains("exec \"/no/such/binary\": no such file or directory"), r.stderr)
        r = b.rt(["exec", "nope", "/bin/true"])
        XCTAssertEqual(r.code, 255)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        r = b.rt(["exec", "c1"])
        XCTAssertNotEqual(r.code, 0)
    }

    func testPauseResumePsAndKillAll() throws {
        b.rt(["exec", "-d", "--pid-file", b.base + "/sleep.pid", "c1", "/bin/sleep", "60"])
        let execPid = try XCTUnwrap(Int(try String(contentsOfFile: b.base + "/sleep.pid", encoding: .utf8)))
        var r = b.rt(["ps", "--format", "json", "c1"])
        var pids = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [Int]
        XCTAssertTrue(pids.contains(execPid))
        pids = [pids.first { $0 != execPid }!, execPid]
        XCTAssertEqual(pids.count, 2, r.stdout)
        r = b.rt(["ps", "c1"])
        XCTAssertTrue(r.stdout.hasPrefix("UID") || r.stdout.contains("PID"), r.stdout)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 3, r.stdout)

        XCTAssertEqual(b.rt(["pause", "c1"]).code, 0)
        var st = try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as! [String: Any]
        XCTAssertEqual(st["status"] as? String, "paused")
        for pid in pids {
            let stat = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            XCTAssertTrue(stat.contains("State:\tS") || stat.contains("State:\tD"), "frozen tasks sleep")
        }
        r = b.rt(["exec", "c1", "/bin/true"])
        XCTAssertEqual(r.code, 255)
        XCTAssertTrue(r.stderr.contains("paused"), r.stderr)
        XCTAssertEqual(b.rt(["resume", "c1"]).code, 0)
        st = try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as! [String: Any]
        XCTAssertEqual(st["status"] as? String, "running")
        XCTAssertNotEqual(b.rt(["resume", "c1"]).code, 0, "resume of a running container fails")

        let kr = b.rt(["kill", "--all", "c1", "KILL"])
        XCTAssertEqual(kr.code, 0, kr.stderr)
        // The detached exec'd process was re-parented to us (subreaper): reap it, as a shim would,
        // or the namespace's init waits for it forever.
        for _ in 0..<300 where waitpid(Int32(pids[1]), nil, WNOHANG) == 0 { usleep(10_000) }
        for _ in 0..<300 where pids.contains(where: { kill(Int32($0), 0) == 0 && !isZombie(Int32($0)) }) { usleep(10_000) }
        for pid in pids {
            XCTAssertTrue(
                kill(Int32(pid), 0) != 0 || isZombie(Int32(pid)),
                "pid \(pid) survived kill --all: \((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "")")
        }
    }

    /// A container that shares another's pid namespace: when its init has exited, `kill --all`
    /// still reaches what it left in the cgroup, and `delete` takes the rest and the cgroup (the
    /// runc shim relies on both; kill --all used to stop at "not running").
    func testLeftoversOfAnInitWithoutItsOwnPidNamespace() throws {
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 mount") }
        let initPid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        let n = try TestBundle()
        defer { n.cleanup() }
        n.addNamespace("pid", path: "/proc/\(initPid)/ns/pid")
        n.args(["/bin/sh", "-c", "sleep 131 & sleep 132 & wait"])
        XCTAssertEqual(n.rt(["run", "-d", "--bundle", n.dir, "n1"]).code, 0)
        let st = try JSONSerialization.jsonObject(with: Data(n.rt(["state", "n1"]).stdout.utf8)) as! [String: Any]
        let shPid = try XCTUnwrap(st["pid"] as? Int)
        for _ in 0..<100 where Host.processes(mentioning: "sleep 132").isEmpty { usleep(20_000) }
        // The init goes; its children stay (nobody's pid 1 died).
        XCTAssertEqual(kill(Int32(shPid), SIGKILL), 0)
        for _ in 0..<100 where !(n.rt(["state", "n1"]).stdout.contains("\"stopped\"")) { usleep(20_000) }
        XCTAssertEqual(Host.processes(mentioning: "sleep 13").count, 2)
        var r = n.rt(["kill", "--all", "n1", "TERM"])
        XCTAssertEqual(r.code, 0, r.stderr)
        for _ in 0..<100 where Host.processes(mentioning: "sleep 131").contains(where: { !isZombie($0) }) { usleep(20_000) }
        XCTAssertFalse(Host.processes(mentioning: "sleep 131").contains(where: { !isZombie($0) }), "kill --all of a stopped init reached its children")
        let cgroup = try XCTUnwrap(n.linux["cgroupsPath"] as? String)
        r = n.rt(["delete", "n1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Host.cgroupRoot! + cgroup), "the cgroup is gone")
    }

    /// A container that joined another's pid namespace is not its pid 1: `kill KILL` reaches
    /// every process in its cgroup (runc signals them all when the pid namespace is not private),
    /// and delete leaves no cgroup. Before, the record called a joined namespace "own": the
    /// init died alone, its children lived on, and delete left the busy cgroup behind.
    func testKillOfAContainerInAJoinedPidNamespaceTakesItsChildren() throws {
        guard let root = Host.cgroupRoot else { throw XCTSkip("no cgroup2 mount") }
        let initPid = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.rt(["state", "c1"]).stdout.utf8)) as? [String: Any])?["pid"] as? Int)
        let n = try TestBundle()
        defer { n.cleanup() }
        n.addNamespace("pid", path: "/proc/\(initPid)/ns/pid")
        n.args(["/bin/sh", "-c", "sleep 1531 & sleep 1532 & wait"])
        XCTAssertEqual(n.rt(["run", "-d", "--bundle", n.dir, "j1"]).code, 0)
        for _ in 0..<100 where Host.processes(mentioning: "sleep 1532").isEmpty { usleep(20_000) }
        XCTAssertEqual(Host.processes(mentioning: "sleep 153").count, 3, "the init (sh) and its two children")
        XCTAssertEqual(n.rt(["kill", "j1", "KILL"]).code, 0)
        let alive = { Host.processes(mentioning: "sleep 153").filter { !self.isZombie($0) } }
        for _ in 0..<100 where !alive().isEmpty { usleep(20_000) }
        XCTAssertEqual(alive(), [], "kill KILL of a container without a pid namespace of its own reached all its processes")
        let cgroup = try XCTUnwrap(n.linux["cgroupsPath"] as? String)
        for _ in 0..<100 where !(n.rt(["state", "j1"]).stdout.contains("\"stopped\"")) { usleep(20_000) }
        let r = n.rt(["delete", "j1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + cgroup), "the cgroup is gone")
    }

    func testEventsStats() throws {
        guard Host.cgroupRoot != nil else { throw XCTSkip("no cgroup2 mount") }
        let r = b.rt(["events", "--stats", "c1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(obj["type"] as? String, "stats")
        XCTAssertEqual(obj["id"] as? String, "c1")
        let cpu = (obj["data"] as? [String: Any])?["cpu"] as? [String: Any]
        XCTAssertNotNil((cpu?["usage"] as? [String: Any])?["total"], r.stdout)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 1, "--stats prints exactly one event")
        XCTAssertEqual(b.rt(["kill", "c1", "KILL"]).code, 0)
        usleep(200_000)
        let s = b.rt(["events", "--stats", "c1"])
        XCTAssertNotEqual(s.code, 0)
        XCTAssertTrue(s.stderr.contains("is not running"), s.stderr)
    }

    func testDeleteForceOfAPausedContainer() throws {
        XCTAssertEqual(b.rt(["pause", "c1"]).code, 0)
        let r = b.rt(["delete", "--force", "c1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.stateRoot + "/c1"))
        if let root = Host.cgroupRoot { XCTAssertFalse(FileManager.default.fileExists(atPath: root + (b.linux["cgroupsPath"] as! String))) }
    }

    func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }
}

import Foundation
import XCTest
import SkiffSys
import SkiffTTRPC
import SkiffWire
import SkiffEventLoop

/// containerd-shim-skiff-v2 driven directly over ttrpc, as containerd would, with this test as
/// the events receiver: `start`, the task API (Create, Start, Exec, Wait pending while other
/// calls go on, State, Pids, CloseIO, Kill, Delete, Shutdown), the event order, bad input,
/// the exit record, and the `delete` action.
final class ShimTaskTests: XCTestCase {
    static let task = "containerd.task.v2.Task"
    var bundle: TestBundle!
    var events: EventsReceiver!

    override func setUpWithError() throws {
        try Env.requireRoot()
        bundle = try TestBundle()
        events = try EventsReceiver(path: bundle.base + "/events.sock")
    }

    override func tearDown() {
        events?.stop()
        for pid in Host.processes(mentioning: bundle.base) { kill(pid, SIGKILL) }
        bundle?.cleanup()
    }

    func startShim(namespace: String = "skiff-test") throws -> (address: String, client: TTRPCClient) {
        var env = ProcessInfo.processInfo.environment
        env["TTRPC_ADDRESS"] = events.path
        let r = Cmd.run(
            Env.shim,
            [
                "-namespace", namespace, "-address", bundle.base + "/containerd.sock", "-publish-binary", "/bin/true",
                "-id", "c1", "start"
            ], timeout: 10, cwd: bundle.dir, env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
        let address = r.stdout
        XCTAssertTrue(address.hasPrefix("unix:///run/containerd/s/"), address)
        XCTAssertEqual(try String(contentsOfFile: bundle.dir + "/address", encoding: .utf8), address, "<bundle>/address")
        let path = String(address.dropFirst(7))
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600, "socket is private")
        return (address, try TTRPCClient.connect(address))
    }

    /// Create for `id` with the runtime state in the test's private root (and a runtime binary).
    func createRequest(_ id: String, bundle dir: String? = nil, binary: String = "") -> CreateTaskRequest {
        var create = CreateTaskRequest()
        create.id = id
        create.bundle = dir ?? bundle.dir
        var opts = RuncOptions(); opts.root = bundle.stateRoot; opts.binaryName = binary
        create.options = ProtoAny(typeURL: RuncOptions.protoName, value: opts.protoBytes())
        return create
    }

    func call<R: ProtoMessage>(_ c: TTRPCClient, _ method: String, _ req: some ProtoMessage, _: R.Type = R.self) throws -> R {
        try R(protoBytes: try c.call(service: Self.task, method: method, payload: req.protoBytes(), timeoutMs: 20_000))
    }

    func testTaskAPIOverTTRPC() throws {
        bundle.args(["/bin/sh", "-c", "read line; echo got:$line; echo to-stderr >&2; exit 7"])
        try bundle.write()
        let fifos = bundle.base + "/fifos"
        try FileManager.default.createDirectory(atPath: fifos, withIntermediateDirectories: true)
        for n in ["in", "out", "err", "eout"] { XCTAssertEqual(mkfifo(fifos + "/" + n, 0o600), 0) }
        // Our ends, opened without blocking, as containerd's client does.
        let outFd = open(fifos + "/out", O_RDONLY | O_NONBLOCK), errFd = open(fifos + "/err", O_RDONLY | O_NONBLOCK)
        let eoutFd = open(fifos + "/eout", O_RDONLY | O_NONBLOCK)
        defer { close(outFd); close(errFd); close(eoutFd) }

        let (address, c) = try startShim()
        var create = createRequest("c1")
        create.stdin = fifos + "/in"; create.stdout = fifos + "/out"; create.stderr = fifos + "/err"
        let created: CreateTaskResponse = try call(c, "Create", create)
        XCTAssertGreaterThan(created.pid, 0)
        // The runtime state is where the options said.
        XCTAssertTrue(FileManager.default.fileExists(atPath: bundle.stateRoot + "/skiff-test/c1/state.json"))

        var connectReq = ConnectRequest(); connectReq.id = "c1"
        let connected: ConnectResponse = try call(c, "Connect", connectReq)
        XCTAssertEqual(connected.taskPid, created.pid)
        XCTAssertGreaterThan(connected.shimPid, 0)
        XCTAssertEqual(
            try String(contentsOfFile: "/proc/\(connected.shimPid)/status", encoding: .utf8)
                .split(separator: "\n").first { $0.hasPrefix("Threads:") }?.split(separator: "\t").last, "1", "one thread")
        // The daemon runs from a read-only overlayfs view of its binary (ExeGuard): the containers
        // it starts cannot reopen it for writing through /proc/PID/exe (EROFS, not ETXTBSY).
        let exe = open("/proc/\(connected.shimPid)/exe", oPath | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(exe, 0)
        let w = open("/proc/self/fd/\(exe)", O_WRONLY | O_CLOEXEC)
        XCTAssertEqual(w < 0 ? errno : 0, EROFS)
        if w >= 0 { close(w) }
        close(exe)

        var stateReq = StateRequest(); stateReq.id = "c1"
        XCTAssertEqual((try call(c, "State", stateReq) as StateResponse).status, .created)
        // A created task can be paused (runc's rule) and then reads paused, as runc's shim says.
        var pauseReq = PauseRequest(); pauseReq.id = "c1"
        var resumeReq = ResumeRequest(); resumeReq.id = "c1"
        let _: ProtoEmpty = try call(c, "Pause", pauseReq)
        XCTAssertEqual((try call(c, "State", stateReq) as StateResponse).status, .paused)
        let _: ProtoEmpty = try call(c, "Resume", resumeReq)
        XCTAssertEqual((try call(c, "State", stateReq) as StateResponse).status, .created)

        // Wait stays pending; everything below is answered on the same connection meanwhile.
        var waitReq = WaitRequest(); waitReq.id = "c1"
        let waitStream = try c.send(service: Self.task, method: "Wait", payload: waitReq.protoBytes(), timeoutMs: 30_000)

        var startReq = StartRequest(); startReq.id = "c1"
        XCTAssertEqual((try call(c, "Start", startReq) as StartResponse).pid, created.pid)
        XCTAssertEqual((try call(c, "State", stateReq) as StateResponse).status, .running)

        // An exec with its own stdout, its exit matched by pid.
        var exec = ExecProcessRequest()
        exec.id = "c1"; exec.execID = "e1"; exec.stdout = fifos + "/eout"
        let process = #"{"args":["/bin/skiff-payload","echo","in-exec","exit","3"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#
        exec.spec = ProtoAny(typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Array(process.utf8))
        let _: ProtoEmpty = try call(c, "Exec", exec)
        XCTAssertThrowsError(try call(c, "Exec", exec) as ProtoEmpty) { XCTAssertEqual(($0 as? TTRPCStatus)?.code, .alreadyExists) }
        var execWait = WaitRequest(); execWait.id = "c1"; execWait.execID = "e1"
        let execWaitStream = try c.send(service: Self.task, method: "Wait", payload: execWait.protoBytes(), timeoutMs: 30_000)
        var execStart = StartRequest(); execStart.id = "c1"; execStart.execID = "e1"
        let execPid = (try call(c, "Start", execStart) as StartResponse).pid
        XCTAssertGreaterThan(execPid, 0)
        let execExit = try WaitResponse(protoBytes: try c.receive(stream: execWaitStream, timeoutMs: 20_000))
        XCTAssertEqual(execExit.exitStatus, 3)
        XCTAssertTrue(readAll(eoutFd, until: "in-exec").contains("in-exec"))
        var pidsReq = PidsRequest(); pidsReq.id = "c1"
        let pids: PidsResponse = try call(c, "Pids", pidsReq)
        XCTAssertTrue(pids.processes.contains { $0.pid == created.pid }, "\(pids.processes)")
        var execDelete = DeleteRequest(); execDelete.id = "c1"; execDelete.execID = "e1"
        XCTAssertEqual((try call(c, "Delete", execDelete) as DeleteResponse).exitStatus, 3)

        // stdin: a line, then CloseIO and our close give the container EOF.
        let inFd = open(fifos + "/in", O_WRONLY | O_NONBLOCK)
        XCTAssertGreaterThanOrEqual(inFd, 0)
        _ = "ping\n".withCString { write(inFd, $0, 5) }
        var closeIO = CloseIORequest(); closeIO.id = "c1"; closeIO.stdin = true
        let _: ProtoEmpty = try call(c, "CloseIO", closeIO)
        close(inFd)

        let exit = try WaitResponse(protoBytes: try c.receive(stream: waitStream, timeoutMs: 20_000))
        XCTAssertEqual(exit.exitStatus, 7)
        XCTAssertGreaterThan(exit.exitedAt?.seconds ?? 0, 1_600_000_000, "exited_at is set")
        XCTAssertTrue(readAll(outFd, until: "got:ping").contains("got:ping"))
        XCTAssertTrue(readAll(errFd, until: "to-stderr").contains("to-stderr"))
        // The exit went to disk before it was reported.
        XCTAssertEqual(try String(contentsOfFile: bundle.dir + "/init.exit", encoding: .utf8).split(separator: " ")[1], "7")
        XCTAssertEqual((try call(c, "State", stateReq) as StateResponse).status, .stopped)
        var killReq = KillRequest(); killReq.id = "c1"; killReq.signal = 9
        XCTAssertThrowsError(try call(c, "Kill", killReq) as ProtoEmpty) { XCTAssertEqual(($0 as? TTRPCStatus)?.code, .notFound) }

        // Bad input: errors, and the shim stays up. A signal past Int32 (an image's StopSignal
        // "2147483648" through containerd) used to trap the shim.
        for bad: UInt32 in [65, 2_147_483_648, UInt32.max] {
            var k = KillRequest(); k.id = "c1"; k.signal = bad
            XCTAssertThrowsError(try call(c, "Kill", k) as ProtoEmpty) { XCTAssertEqual(($0 as? TTRPCStatus)?.code, .invalidArgument, "\($0)") }
        }
        XCTAssertThrowsError(try c.call(service: Self.task, method: "Frobnicate", payload: [])) {
            XCTAssertEqual(($0 as? TTRPCStatus)?.code, .unimplemented)
        }
        XCTAssertThrowsError(try c.call(service: Self.task, method: "Create", payload: [0x0a, 0x50, 0x41])) {
            XCTAssertEqual(($0 as? TTRPCStatus)?.code, .invalidArgument)
        }
        var unknown = StateRequest(); unknown.id = "nope"
        XCTAssertThrowsError(try call(c, "State", unknown) as StateResponse) { XCTAssertEqual(($0 as? TTRPCStatus)?.code, .notFound) }
        XCTAssertThrowsError(try call(c, "Checkpoint", CheckpointTaskRequest()) as ProtoEmpty) {
            XCTAssertEqual(($0 as? TTRPCStatus)?.code, .unimplemented)
        }
        // Shutdown with a container left is a no-op.
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
        XCTAssertEqual((try call(c, "Connect", connectReq) as ConnectResponse).shimPid, connected.shimPid)

        var del = DeleteRequest(); del.id = "c1"
        let deleted: DeleteResponse = try call(c, "Delete", del)
        XCTAssertEqual(deleted.exitStatus, 7)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bundle.stateRoot + "/skiff-test/c1"), "runtime state removed")
        XCTAssertEqual(
            events.topics(),
            [
                "/tasks/create", "/tasks/paused", "/tasks/resumed", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started",
                "/tasks/exit", "/tasks/exit", "/tasks/delete"
            ])
        let exits = events.received.filter { $0.topic == "/tasks/exit" }.compactMap { try? TaskExit(protoBytes: $0.event) }
        XCTAssertEqual(exits.map(\.id), ["e1", "c1"], "TaskExit.id is the exec id, or the container id for the init")
        XCTAssertEqual(exits.map(\.exitStatus), [3, 7])

        // Shutdown with nothing left: the shim exits and removes its socket.
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
        let socket = String(address.dropFirst(7))
        for _ in 0..<100 where FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket))
        for _ in 0..<100 where kill(pid_t(connected.shimPid), 0) == 0 { usleep(20_000) }
        XCTAssertNotEqual(kill(pid_t(connected.shimPid), 0), 0, "shim exited")

        // containerd then runs `delete`: idempotent, reports the recorded exit.
        let d = Cmd.run(
            Env.shim,
            [
                "-namespace", "skiff-test", "-address", bundle.base + "/containerd.sock", "-id", "c1",
                "-bundle", bundle.dir, "delete"
            ], timeout: 10, cwd: bundle.dir)
        XCTAssertEqual(d.code, 0, d.stderr)
        let resp = try DeleteResponse(protoBytes: Array(d.stdoutBytes))
        XCTAssertEqual(resp.exitStatus, 7)
    }

    /// A terminal, in-process and through an external runc (BinaryName): the pty master reaches
    /// the shim (directly, or relayed from runc's --console-socket) and its output the stdout FIFO.
    func testTerminalInProcessAndWithRuncAsBinaryName() throws {
        var binaries: [String] = [""]
        if let runc = Env.which("runc") { binaries.append(runc) } else { print("runc not installed: external BinaryName part skipped") }
        bundle.process["terminal"] = true
        bundle.args(["/bin/skiff-payload", "tty", "sleep", "0.3", "exit", "5"])
        try bundle.write()
        let (_, c) = try startShim()
        for (n, binary) in binaries.enumerated() {
            let id = "t\(n)"
            let out = bundle.base + "/\(id).out"
            XCTAssertEqual(mkfifo(out, 0o600), 0)
            let outFd = open(out, O_RDONLY | O_NONBLOCK)
            defer { close(outFd) }
            var create = createRequest(id, binary: binary)
            create.terminal = true; create.stdout = out
            let created: CreateTaskResponse = try call(c, "Create", create)
            XCTAssertGreaterThan(created.pid, 0)
            if !binary.isEmpty {
                XCTAssertTrue(FileManager.default.fileExists(atPath: bundle.stateRoot + "/skiff-test/\(id)/state.json"), "runc's state")
            }
            var waitReq = WaitRequest(); waitReq.id = id
            let waitStream = try c.send(service: Self.task, method: "Wait", payload: waitReq.protoBytes(), timeoutMs: 30_000)
            var startReq = StartRequest(); startReq.id = id
            let _: StartResponse = try call(c, "Start", startReq)
            var resize = ResizePtyRequest(); resize.id = id; resize.width = 100; resize.height = 30
            let _: ProtoEmpty = try call(c, "ResizePty", resize)
            if !binary.isEmpty {
                // An exec through runc, matched by the pid from its pid file.
                var exec = ExecProcessRequest(); exec.id = id; exec.execID = "x"
                let process = #"{"args":["/bin/true"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#
                exec.spec = ProtoAny(typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Array(process.utf8))
                let _: ProtoEmpty = try call(c, "Exec", exec)
                var ew = WaitRequest(); ew.id = id; ew.execID = "x"
                let ews = try c.send(service: Self.task, method: "Wait", payload: ew.protoBytes(), timeoutMs: 30_000)
                var es = StartRequest(); es.id = id; es.execID = "x"
                let _: StartResponse = try call(c, "Start", es)
                XCTAssertEqual(try WaitResponse(protoBytes: try c.receive(stream: ews, timeoutMs: 20_000)).exitStatus, 0)
                var pids = PidsRequest(); pids.id = id
                XCTAssertTrue((try call(c, "Pids", pids) as PidsResponse).processes.contains { $0.pid == created.pid })
            }
            let exit = try WaitResponse(protoBytes: try c.receive(stream: waitStream, timeoutMs: 20_000))
            XCTAssertEqual(exit.exitStatus, 5, "binary \(binary.isEmpty ? "in-process" : binary)")
            let text = readAll(outFd, until: "tty=")
            XCTAssertTrue(text.contains("isatty=1"), "\(binary): \(text)")
            var del = DeleteRequest(); del.id = id
            XCTAssertEqual((try call(c, "Delete", del) as DeleteResponse).exitStatus, 5)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bundle.stateRoot + "/skiff-test/\(id)"))
        }
        // A BinaryName that does not exist is a clear error, and nothing is left.
        var bad = CreateTaskRequest(); bad.id = "bad"; bad.bundle = bundle.dir
        var opts = RuncOptions(); opts.binaryName = "/nonexistent/runc"
        bad.options = ProtoAny(typeURL: RuncOptions.protoName, value: opts.protoBytes())
        XCTAssertThrowsError(try call(c, "Create", bad) as CreateTaskResponse) { XCTAssertTrue("\($0)".contains("/nonexistent/runc"), "\($0)") }
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
    }

    /// Containers of one group (a pod) share a shim: the second `start` finds the first's socket.
    func testGroupedContainersShareOneShim() throws {
        bundle.config["annotations"] = ["io.containerd.runc.v2.group": "pod1"]
        bundle.args(["/bin/sleep", "600"])
        try bundle.write()
        let second = bundle.base + "/bundle2"
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: bundle.dir + "/config.json", toPath: second + "/config.json")
        let (address, c) = try startShim()
        var env = ProcessInfo.processInfo.environment
        env["TTRPC_ADDRESS"] = events.path
        let r = Cmd.run(
            Env.shim, ["-namespace", "skiff-test", "-address", bundle.base + "/containerd.sock", "-id", "c2", "start"],
            timeout: 10, cwd: second, env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(r.stdout, address, "same group, same shim")
        XCTAssertEqual(try String(contentsOfFile: second + "/address", encoding: .utf8), address)
        var pids: [UInt32] = []
        for (id, dir) in [("c1", bundle.dir), ("c2", second)] {
            pids.append((try call(c, "Create", createRequest(id, bundle: dir)) as CreateTaskResponse).pid)
            var start = StartRequest(); start.id = id
            let _: StartResponse = try call(c, "Start", start)
        }
        var conn = ConnectRequest(); conn.id = "c2"
        XCTAssertEqual((try call(c, "Connect", conn) as ConnectResponse).taskPid, pids[1])
        for id in ["c1", "c2"] {
            var w = WaitRequest(); w.id = id
            let stream = try c.send(service: Self.task, method: "Wait", payload: w.protoBytes(), timeoutMs: 30_000)
            var k = KillRequest(); k.id = id; k.signal = 9
            let _: ProtoEmpty = try call(c, "Kill", k)
            XCTAssertEqual(try WaitResponse(protoBytes: try c.receive(stream: stream, timeoutMs: 20_000)).exitStatus, 137)
            // Shutdown while the other container is still there keeps the shim.
            let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
            var d = DeleteRequest(); d.id = id
            let _: DeleteResponse = try call(c, "Delete", d)
        }
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
        let socket = String(address.dropFirst(7))
        for _ in 0..<100 where FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the last Shutdown ends the shared shim")
    }

    /// CVE-2024-21626 through the shim, which holds many more fds than the CLI (its sockets, the
    /// bundle, the events connection): Create and Exec with every /proc/self/fd/N cwd are refused
    /// and nothing on the host is written.
    func testHostileCwdThroughTheShimIsRefused() throws {
        let probe = try EscapeProbe()
        let (_, c) = try startShim()
        for (i, cwd) in EscapeProbe.hostileCwds.enumerated() {
            bundle.process["cwd"] = cwd
            bundle.args(["/bin/sh", "-c", probe.script("create-\(i)")])
            try bundle.write()
            XCTAssertThrowsError(try call(c, "Create", createRequest("h\(i)")) as CreateTaskResponse, "cwd \(cwd)") {
                XCTAssertTrue("\($0)".contains("cwd"), "\($0)")
            }
        }
        bundle.process["cwd"] = "/"
        bundle.args(["/bin/sleep", "600"])
        try bundle.write()
        let _: CreateTaskResponse = try call(c, "Create", createRequest("c1"))
        var startReq = StartRequest(); startReq.id = "c1"
        let _: StartResponse = try call(c, "Start", startReq)
        for (i, cwd) in EscapeProbe.hostileCwds.enumerated() {
            var exec = ExecProcessRequest()
            exec.id = "c1"; exec.execID = "x\(i)"
            let process = try JSONSerialization.data(withJSONObject: [
                "args": ["/bin/sh", "-c", probe.script("exec-\(i)")], "cwd": cwd, "env": ["PATH=/bin"], "user": ["uid": 0, "gid": 0]
            ])
            exec.spec = ProtoAny(typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Array(process))
            let _: ProtoEmpty = try call(c, "Exec", exec)
            var start = StartRequest(); start.id = "c1"; start.execID = "x\(i)"
            XCTAssertThrowsError(try call(c, "Start", start) as StartResponse, "cwd \(cwd)")
            var del = DeleteRequest(); del.id = "c1"; del.execID = "x\(i)"
            _ = try? call(c, "Delete", del) as DeleteResponse
        }
        // Exec ids become file names in the bundle: containerd's identifier rule.
        for bad in ["../escaped", "a/b", "", ".x", String(repeating: "e", count: 77)] {
            var exec = ExecProcessRequest()
            exec.id = "c1"; exec.execID = bad
            exec.spec = ProtoAny(
                typeURL: "types.containerd.io/opencontainers/runtime-spec/1/Process",
                value: Array(#"{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}}"#.utf8))
            XCTAssertThrowsError(try call(c, "Exec", exec) as ProtoEmpty, bad) { XCTAssertEqual(($0 as? TTRPCStatus)?.code, .invalidArgument) }
        }
        usleep(100_000)
        XCTAssertEqual(probe.leaks(""), [])
        // As containerd does: kill, wait for the exit, then delete (which removes the cgroup).
        var w = WaitRequest(); w.id = "c1"
        let waitStream = try c.send(service: Self.task, method: "Wait", payload: w.protoBytes(), timeoutMs: 30_000)
        var k = KillRequest(); k.id = "c1"; k.signal = 9
        let _: ProtoEmpty = try call(c, "Kill", k)
        _ = try WaitResponse(protoBytes: try c.receive(stream: waitStream, timeoutMs: 20_000))
        var d = DeleteRequest(); d.id = "c1"
        let _: DeleteResponse = try call(c, "Delete", d)
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
    }

    /// Rootfs mounts with a target below the rootfs (containerd's Mount.target) were placed by
    /// joining paths, as root in the host's mount namespace: "../../victim", or a symlink an
    /// earlier layer of the rootfs holds, put a mount of any type on the host. Both are refused,
    /// and nothing is mounted outside the rootfs.
    func testRootfsMountTargetsStayInsideTheRootfs() throws {
        let (_, c) = try startShim()
        bundle.args(["/bin/true"])
        try bundle.write()
        let victim = bundle.base + "/victim"
        let lower = bundle.base + "/lower"
        for d in [victim, lower] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: lower + "/escape", withDestinationPath: victim)
        try FileManager.default.createSymbolicLink(atPath: lower + "/top", withDestinationPath: "/")
        defer { _ = umount2(victim, Int32(MNT_DETACH)) }
        var base = Mount()
        base.type = "bind"; base.source = lower; base.options = ["rbind", "rw"]
        // The rootfs itself as a target ("/", a link to it): a bind there hid the place the
        // read-only remount resolves from, and the remount reached the mount beneath.
        for (target, expect) in [
            ("../../victim", "leaves the rootfs"), ("escape", "inside the rootfs"), ("/", "is the rootfs itself"), ("top", "is the rootfs itself")
        ] {
            var sub = Mount()
            sub.type = "tmpfs"; sub.source = "tmpfs"; sub.target = target; sub.options = ["size=1m"]
            var create = createRequest("m1")
            create.rootfs = [base, sub]
            XCTAssertThrowsError(try call(c, "Create", create) as CreateTaskResponse, target) {
                XCTAssertTrue("\($0)".contains(expect), "\(target): \($0)")
            }
            let mounted = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))?.contains(" \(victim) ") ?? false
            XCTAssertFalse(mounted, "\(target): a mount was put on the host's \(victim)")
            _ = umount2(victim, Int32(MNT_DETACH))
        }
        // A legitimate target: the read-only bind is the new mount, and the rootfs stays writable
        // (the remount went through the fd held from before the bind, onto the mount beneath).
        try FileManager.default.createDirectory(atPath: lower + "/sub", withIntermediateDirectories: true)
        var sub = Mount()
        sub.type = "bind"; sub.source = victim; sub.target = "sub"; sub.options = ["rbind", "ro"]
        var create = createRequest("m2")
        create.rootfs = [base, sub]
        let _: CreateTaskResponse = try call(c, "Create", create)
        let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        func options(_ at: String) -> String? {
            info.split(separator: "\n").last { $0.split(separator: " ")[4] == at }.map { String($0.split(separator: " ")[5]) }
        }
        XCTAssertEqual(options(bundle.dir + "/rootfs/sub")?.hasPrefix("ro"), true, info)
        XCTAssertEqual(options(bundle.dir + "/rootfs")?.hasPrefix("rw"), true, info)
        var d = DeleteRequest(); d.id = "m2"
        let _: DeleteResponse = try call(c, "Delete", d)
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
    }

    /// A runtime type containerd does not know gets runtimeoptions.v1.Options: its ConfigPath
    /// names the shim's config file (also `ctr run --runtime-config-path`). SkipUnavailableCgroups
    /// there lets ctr's cpu.shares=1024 through on a host whose cgroup v2 lacks cpu.
    func testRuntimeConfigFromContainerdOptions() throws {
        guard let root = Host.cgroupRoot, !((try? String(contentsOfFile: root + "/cgroup.controllers", encoding: .utf8)) ?? "").contains("cpu") else {
            throw XCTSkip("this host's cgroup v2 has the cpu controller; the skip is not needed")
        }
        bundle.linux["resources"] = ["cpu": ["shares": 1024]]
        bundle.args(["/bin/true"])
        try bundle.write()
        let (_, c) = try startShim()
        func create(_ id: String, config: String?) throws -> CreateTaskResponse {
            var req = createRequest(id)
            if let config {
                let path = bundle.base + "/skiff-\(id).toml"
                try config.write(toFile: path, atomically: true, encoding: .utf8)
                var o = RuntimeOptions(); o.configPath = path
                req.options = ProtoAny(typeURL: RuntimeOptions.protoName, value: o.protoBytes())
            }
            return try call(c, "Create", req)
        }
        XCTAssertThrowsError(try create("a1", config: nil)) { XCTAssertTrue("\($0)".contains("cpu"), "\($0)") }
        XCTAssertNoThrow(try create("a2", config: "# skiff\nSkipUnavailableCgroups = true\nRoot = \"\(bundle.stateRoot)\"\n"))
        XCTAssertThrowsError(try create("a3", config: "Bogus = 1\n")) { XCTAssertTrue("\($0)".contains("unknown key"), "\($0)") }
        var d = DeleteRequest(); d.id = "a2"
        let _: DeleteResponse = try call(c, "Delete", d)
        let _: ProtoEmpty = try call(c, "Shutdown", ShutdownRequest())
    }

    /// kill -9 of the shim: the `delete` action force-deletes the container and reports 137.
    func testDeleteActionAfterTheShimDied() throws {
        bundle.args(["/bin/sleep", "600"])
        try bundle.write()
        let (_, c) = try startShim()
        let created: CreateTaskResponse = try call(c, "Create", createRequest("c1"))
        var startReq = StartRequest(); startReq.id = "c1"
        let _: StartResponse = try call(c, "Start", startReq)
        let shimPid = (try call(c, "Connect", ConnectRequest()) as ConnectResponse).shimPid
        kill(pid_t(shimPid), SIGKILL)
        XCTAssertEqual(kill(pid_t(created.pid), 0), 0, "the container outlives its shim")
        let d = Cmd.run(
            Env.shim,
            [
                "-namespace", "skiff-test", "-address", bundle.base + "/containerd.sock", "-id", "c1",
                "-bundle", bundle.dir, "delete"
            ], timeout: 20, cwd: bundle.dir)
        XCTAssertEqual(d.code, 0, d.stderr)
        let resp = try DeleteResponse(protoBytes: Array(d.stdoutBytes))
        XCTAssertEqual(resp.exitStatus, 137)
        XCTAssertEqual(resp.pid, created.pid)
        for _ in 0..<100 where Host.processAlive(pid_t(created.pid)) { usleep(20_000) }
        XCTAssertFalse(Host.processAlive(pid_t(created.pid)), "container killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: bundle.stateRoot + "/skiff-test/c1"))
        // Again: already gone is fine.
        XCTAssertEqual(Cmd.run(Env.shim, ["-namespace", "skiff-test", "-id", "c1", "-bundle", bundle.dir, "delete"], cwd: bundle.dir).code, 0)
    }

    func readAll(_ fd: Int32, until marker: String, timeout: TimeInterval = 10) -> String {
        var out = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = read(fd, &buf, buf.count)
            if n > 0 { out += buf[0..<n] }
            if String(decoding: out, as: UTF8.self).contains(marker) { break }
            if n <= 0 { usleep(10_000) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A stand-in for containerd's ttrpc events service (TTRPC_ADDRESS), on its own thread.
final class EventsReceiver: @unchecked Sendable {
    struct Received { var topic: String; var namespace: String; var event: [UInt8] }
    let path: String
    let loop: EventLoop
    let server: TTRPCServer
    let lock = NSLock()
    var list: [Received] = []
    var done = false
    let finished = DispatchSemaphore(value: 0)
    let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = try Sys.listenUnix(path)
        loop = try EventLoop()
        server = TTRPCServer(loop: loop)
        server.register(service: "containerd.services.events.ttrpc.v1.Events", method: "Forward") { [unowned self] payload, md, reply in
            if let f = try? ForwardRequest(protoBytes: payload), let env = f.envelope {
                self.lock.lock()
                self.list.append(
                    Received(
                        topic: env.topic, namespace: md["containerd-namespace-ttrpc"] ?? env.namespace,
                        event: env.event?.value ?? []))
                self.lock.unlock()
                reply(.success([]))
            } else {
                reply(.failure(TTRPCStatus(.invalidArgument, "bad envelope")))
            }
        }
        try server.serve(listener: fd)
        let loop = self.loop
        Thread { [self] in
            while !isDone { loop.runOnce(timeoutMs: 5) }
            finished.signal()
        }.start()
    }

    var isDone: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var received: [Received] { lock.lock(); defer { lock.unlock() }; return list }
    func topics() -> [String] { received.map(\.topic) }

    func stop() {
        lock.lock(); done = true; lock.unlock()
        finished.wait()
        close(fd)
        unlink(path)
    }
}

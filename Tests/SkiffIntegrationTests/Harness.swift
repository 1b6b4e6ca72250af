import Foundation
import XCTest
import SkiffSys

/// Shared helpers for integration tests: they run the real `skiff` binary (and runc where
/// installed) on bundles made from the fixture rootfs, each test with a private state root.
enum Env {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var skiff: String {
        if let p = ProcessInfo.processInfo.environment["SKIFF_BIN"] { return p }
        // `swift test` builds debug; CI points SKIFF_BIN at the static release binary.
        for c in [".build/debug/skiff", ".build/release/skiff"] where FileManager.default.isExecutableFile(atPath: packageRoot + "/" + c) {
            return packageRoot + "/" + c
        }
        return packageRoot + "/.build/debug/skiff"
    }

    /// containerd-shim-skiff-v2 (static release in CI, like `skiff`).
    static var shim: String {
        if let p = ProcessInfo.processInfo.environment["SKIFF_SHIM_BIN"] { return p }
        for c in [".build/debug/containerd-shim-skiff-v2", ".build/release/containerd-shim-skiff-v2"]
        where FileManager.default.isExecutableFile(atPath: packageRoot + "/" + c) {
            return packageRoot + "/" + c
        }
        return packageRoot + "/.build/debug/containerd-shim-skiff-v2"
    }

    /// skiffctl (the manager), and the shim it starts (next to it, else on PATH).
    static var skiffctl: String {
        if let p = ProcessInfo.processInfo.environment["SKIFF_CTL_BIN"] { return p }
        for c in [".build/debug/skiffctl", ".build/release/skiffctl"] where FileManager.default.isExecutableFile(atPath: packageRoot + "/" + c) {
            return packageRoot + "/" + c
        }
        return packageRoot + "/.build/debug/skiffctl"
    }

    /// The fixture rootfs, built on first use (busybox-static + skiff-payload). A failed build
    /// is kept in `rootfsProblem`: every TestBundle then fails with it (no crash, no skip).
    static let rootfs: String = {
        if let p = ProcessInfo.processInfo.environment["SKIFF_ROOTFS"] { return p }
        let out = packageRoot + "/fixtures/out/rootfs"
        if !FileManager.default.fileExists(atPath: out + "/bin/skiff-payload") {
            let r = Cmd.run("/bin/sh", [packageRoot + "/fixtures/build-rootfs.sh", out])
            if r.code != 0 { rootfsProblem = "building the fixture rootfs failed: \(r.stderr)" }
        }
        return out
    }()
    nonisolated(unsafe) static var rootfsProblem: String?

    /// crictl 1.26: SKIFF_CRICTL, the development VM's ../shared/tools (next to the checkout, and
    /// at /work/shared for a clone made elsewhere), or on PATH (a host with cri-tools).
    static var crictl: String? {
        let candidates = [
            ProcessInfo.processInfo.environment["SKIFF_CRICTL"], packageRoot + "/../shared/tools/crictl", "/work/shared/tools/crictl", which("crictl")
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func which(_ name: String) -> String? {
        for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
            let p = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func requireRoot() throws {
        if geteuid() != 0 { throw XCTSkip("needs root (containers need namespaces and mounts)") }
    }

    /// strace, which tests use to delay or fail one system call of the command under test
    /// (setup.sh installs it); `purpose` says what for in the skip message.
    static func requireStrace(_ purpose: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else {
            throw XCTSkip("needs /usr/bin/strace to \(purpose) (apt-get install strace)")
        }
    }
}

/// A test's set-up that could not be done: thrown, so XCTest reports the test failed with it.
struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct CmdResult {
    var code: Int32
    var stdout: String
    var stderr: String
    var stdoutBytes: [UInt8] = []
    /// key=value lines printed by skiff-payload.
    var values: [String: String] {
        var d: [String: String] = [:]
        for line in stdout.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { d[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        return d
    }
}

enum Cmd {
    /// Runs a command with posix_spawn and waitpid. Not Foundation's Process: it notices exit
    /// through a descriptor the child inherits, so a daemon the command leaves behind (conmon, a
    /// shim, a detached container) would make it wait for the daemon.
    @discardableResult
    static func run(
        _ path: String, _ args: [String], stdin: String? = nil, timeout: TimeInterval = 60,
        cwd: String? = nil, env: [String: String]? = nil
    ) -> CmdResult {
        let tmp = NSTemporaryDirectory() + "skiff-cmd-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: tmp + ".in", contents: (stdin ?? "").data(using: .utf8))
        defer { for s in [".in", ".out", ".err"] { try? FileManager.default.removeItem(atPath: tmp + s) } }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, stdin == nil ? "/dev/null" : tmp + ".in", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, tmp + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&fa, 2, tmp + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // posix_spawn_file_actions_addchdir_np is not visible to Swift: env -C changes directory.
        let (exe, all) = cwd.map { ("/usr/bin/env", ["/usr/bin/env", "-C", $0, path] + args) } ?? (path, [path] + args)
        let environment = env ?? ProcessInfo.processInfo.environment
        let argv = all.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &fa, nil, argv, envp)
        if rc != 0 { return CmdResult(code: -1, stdout: "", stderr: "posix_spawn \(path): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if Date() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(1000)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let bytes = FileManager.default.contents(atPath: tmp + ".out").map { [UInt8]($0) } ?? []
        let o = String(decoding: bytes, as: UTF8.self)
        let e = (try? String(contentsOfFile: tmp + ".err", encoding: .utf8)) ?? ""
        return CmdResult(code: code, stdout: o, stderr: e, stdoutBytes: bytes)
    }

    static func sh(_ script: String) -> CmdResult { run("/bin/sh", ["-c", script]) }
}

/// A bundle in a private temp dir, with config.json built from `skiff spec` and edited as JSON.
final class TestBundle {
    let dir: String
    let stateRoot: String
    var config: [String: Any]
    let runtime: String
    /// Set when a test wrote config.json by hand (e.g. malformed JSON).
    var keepConfigFile = false
    let testName: String
    /// The bundle joins a cgroup another bundle (or the test) made and removes.
    var cgroupOwnedElsewhere = false

    init(runtime: String = Env.skiff, rootfs: String = Env.rootfs, name: String = #function) throws {
        let base = "/tmp/skiff-it-" + UUID().uuidString.prefix(8).lowercased()
        testName = name
        dir = base + "/bundle"
        stateRoot = base + "/state"
        self.runtime = runtime
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A broken `skiff spec` or fixture is a failure of every test that needs a bundle, not a skip.
        if rootfs == Env.rootfs, let problem = Env.rootfsProblem { throw SetupError(problem) }
        let r = Cmd.run(Env.skiff, ["spec", "--bundle", dir])
        guard r.code == 0 else { throw SetupError("skiff spec failed (exit \(r.code)): \(r.stderr)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))
        config = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        process["terminal"] = false
        config["root"] = ["path": rootfs, "readonly": true]
        // Tests run on shared hosts: a unique cgroup per bundle.
        linux["cgroupsPath"] = "/skiff-test-" + String(base.split(separator: "-").last!)
    }

    var base: String { (dir as NSString).deletingLastPathComponent }

    var process: [String: Any] {
        get { config["process"] as? [String: Any] ?? [:] }
        set { config["process"] = newValue }
    }

    var linux: [String: Any] {
        get { config["linux"] as? [String: Any] ?? [:] }
        set { config["linux"] = newValue }
    }

    func args(_ a: [String]) { process["args"] = a }

    /// Payload subcommands, e.g. payload("id", "exit", "3").
    func payload(_ a: String...) { args(["/bin/skiff-payload"] + a) }

    func addMount(_ m: [String: Any]) {
        config["mounts"] = (config["mounts"] as? [[String: Any]] ?? []) + [m]
    }

    func setNamespaces(_ ns: [[String: Any]]) { linux["namespaces"] = ns }

    func addNamespace(_ type: String, path: String? = nil) {
        var list = (linux["namespaces"] as? [[String: Any]] ?? []).filter { $0["type"] as? String != type }
        var n: [String: Any] = ["type": type]
        if let path { n["path"] = path }
        list.append(n)
        linux["namespaces"] = list
    }

    func write() throws {
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted])
        try data.write(to: URL(fileURLWithPath: dir + "/config.json"))
    }

    /// Runs every command in a private mount namespace whose /sys/fs/cgroup is the cgroup2
    /// hierarchy alone: on a hybrid host runc would otherwise use the v1 controllers while skiff
    /// uses v2, and a comparison would see two different hosts.
    var pureCgroupV2View = false

    /// Runs the runtime with this bundle's private root; writes config.json first.
    @discardableResult
    func rt(_ args: [String], stdin: String? = nil, timeout: TimeInterval = 60, extraGlobal: [String] = []) -> CmdResult {
        if !keepConfigFile { try? write() }
        return runtimeCommand(args, stdin: stdin, timeout: timeout, extraGlobal: extraGlobal)
    }

    /// The runtime with this bundle's private root, in the cgroup view the bundle asks for.
    func runtimeCommand(_ args: [String], stdin: String? = nil, timeout: TimeInterval = 60, extraGlobal: [String] = []) -> CmdResult {
        let argv = [runtime, "--root", stateRoot] + extraGlobal + args
        if pureCgroupV2View, let (exe, wrapped) = Host.inPureCgroupV2View(argv) {
            return Cmd.run(exe, wrapped, stdin: stdin, timeout: timeout, cwd: dir)
        }
        return Cmd.run(argv[0], Array(argv.dropFirst()), stdin: stdin, timeout: timeout, cwd: dir)
    }

    func run(_ id: String = "c1", extra: [String] = []) -> CmdResult {
        rt(["run", "--bundle", dir] + extra + [id])
    }

    /// Force-deletes whatever is left and removes the temp dir. Returns leftovers found before removal.
    func cleanup() {
        // In the view the containers were made in: the recorded cgroup paths are that view's.
        let list = runtimeCommand(["list", "-q"]).stdout.split(separator: "\n")
        for id in list { runtimeCommand(["delete", "--force", String(id)]) }
        try? FileManager.default.removeItem(atPath: base)
        // Nothing may stay in the cgroup hierarchy either: a leftover fails the test that made it.
        if !cgroupOwnedElsewhere, let root = Host.cgroupRoot, let path = linux["cgroupsPath"] as? String, path.hasPrefix("/skiff-test-"),
            FileManager.default.fileExists(atPath: root + path)
        {
            XCTFail("\(testName): the cgroup \(root + path) was left behind (runtime \(runtime))")
            Cmd.run("/bin/sh", ["-c", "find \(root + path) -depth -type d -exec rmdir {} \\;"])
        }
    }
}

enum Host {
    /// What a private containerd's namespace leaves on the host once its tasks are gone: the
    /// shims' state root, runc's (the runc shim's), and the namespace's parent cgroup in every
    /// hierarchy (runc creates it in each v1 controller). Only empty directories are removed.
    static func removeContainerdLeftovers(namespace ns: String) {
        try? FileManager.default.removeItem(atPath: "/run/containerd/skiff/" + ns)
        rmdir("/run/containerd/runc/" + ns)
        // Depth first: a pod's shared cgroup (ns/shared-skiff) or a sandbox's keeps ns from going.
        for h in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        where FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(h)/\(ns)") {
            Cmd.run("/bin/sh", ["-c", "find /sys/fs/cgroup/\(h)/\(ns) -depth -type d -exec rmdir {} \\; 2>/dev/null"])
        }
        rmdir("/sys/fs/cgroup/" + ns)
    }

    static var cgroupRoot: String? {
        let mi = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in mi.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let d = f.firstIndex(of: "-"), d + 1 < f.count, f[d + 1] == "cgroup2" { return String(f[4]) }
        }
        return nil
    }

    /// Alive and not a zombie.
    static func processAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    static func mounts(containing s: String) -> [String] {
        let mi = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return mi.split(separator: "\n").filter { $0.contains(s) }.map(String.init)
    }

    static func ns(_ name: String) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(name)")) ?? ""
    }

    /// Processes whose command line mentions `s` (excluding this test process).
    static func processes(mentioning s: String) -> [Int32] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { pid in
            guard pid != me, let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: d, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").contains(s)
        }
    }
}

/// A containerd 1.6 of the test's own: config, root, state and sockets under `work`. Started
/// with posix_spawn (not Process: its shims would keep Process's descriptor open).
final class PrivateContainerd {
    let work: String
    let binary: String
    let ctrBinary: String
    var pid: pid_t = 0
    var sock: String { work + "/c.sock" }
    /// Prepended to containerd's PATH (where it looks up shims by runtime name).
    let extraPath: String?

    /// Set by the CRI tests: no SKIFF_CGROUPS_SKIP_UNAVAILABLE in containerd's environment (the
    /// shim's options say it).
    var environmentSkipsCgroups = true

    /// `cri`: the `[plugins."io.containerd.grpc.v1.cri"]` section (the CRI tests'); without
    /// it the CRI plugin runs idle.
    init(work: String, extraPath: String? = nil, cri: String? = nil) throws {
        self.extraPath = extraPath
        if cri != nil { environmentSkipsCgroups = false }
        guard let containerd = Env.which("containerd"), let ctr = Env.which("ctr") else {
            throw XCTSkip("containerd is not installed (apt-get install containerd)")
        }
        self.work = work
        binary = containerd
        ctrBinary = ctr
        let config = """
            version = 2
            root = "\(work)/root"
            state = "\(work)/state"
            [grpc]
              address = "\(work)/c.sock"
            [ttrpc]
              address = "\(work)/c.sock.ttrpc"
            [metrics]
              address = ""

            """
            + (cri ?? """
                [plugins."io.containerd.grpc.v1.cri"]
                  disable_tcp_service = true
                """)
        try config.write(toFile: work + "/config.toml", atomically: true, encoding: .utf8)
        try start()
    }

    func start() throws {
        unlink(sock)
        // On a hybrid host the limits containerd asks for have no v2 controller: skip them (documented knob).
        var env = ["PATH": (extraPath.map { $0 + ":" } ?? "") + "/usr/sbin:/usr/bin:/sbin:/bin"]
        if environmentSkipsCgroups { env["SKIFF_CGROUPS_SKIP_UNAVAILABLE"] = "1" }
        let daemon = Background([binary, "--config", work + "/config.toml"], env: env, log: work + "/containerd.log")
        guard daemon.pid > 0 else { throw XCTSkip("cannot start containerd") }
        pid = daemon.pid
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: sock) { usleep(25_000) }
    }

    /// SIGKILL, as a crash would; the shims keep running.
    func crash() {
        kill(pid, SIGKILL)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
    }

    func stop() {
        kill(pid, SIGTERM)
        var st: Int32 = 0
        for _ in 0..<200 where waitpid(pid, &st, WNOHANG) == 0 { usleep(25_000) }
        kill(pid, SIGKILL)
        waitpid(pid, &st, WNOHANG)
    }

    @discardableResult
    func ctr(_ args: [String], timeout: TimeInterval = 60) -> CmdResult {
        Cmd.run(ctrBinary, ["--address", sock] + args, timeout: timeout)
    }

    /// The detached task commands, as a user runs them: run -d, ls, exec (its exit code and
    /// output), ps, pause/resume, metrics, kill -9, delete (reporting 137), container delete.
    func checkDetachedTask(
        _ ns: [String], runtime: [String], image: String, metrics: Bool,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        func ctr(_ a: [String]) -> CmdResult { self.ctr(ns + a) }
        func waitFor(_ what: String) -> Bool {
            for _ in 0..<100 where !ctr(["task", "ls"]).stdout.contains(what) { usleep(50_000) }
            return ctr(["task", "ls"]).stdout.contains(what)
        }
        var r = ctr(["run", "-d"] + runtime + [image, "d1", "/bin/sleep", "60"])
        XCTAssertEqual(r.code, 0, r.stderr, file: file, line: line)
        XCTAssertTrue(ctr(["task", "ls"]).stdout.contains("RUNNING"), file: file, line: line)
        r = ctr(["task", "exec", "--exec-id", "e1", "d1", "/bin/skiff-payload", "pid", "echo", "in-exec", "exit", "4"])
        XCTAssertEqual(r.code, 4, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.contains("in-exec"), r.stdout, file: file, line: line)
        XCTAssertNotEqual(r.values["pid"], "1", file: file, line: line)
        r = ctr(["task", "ps", "d1"])
        XCTAssertEqual(r.code, 0, r.stderr, file: file, line: line)
        XCTAssertGreaterThanOrEqual(r.stdout.split(separator: "\n").count, 2, r.stdout, file: file, line: line)
        XCTAssertEqual(ctr(["task", "pause", "d1"]).code, 0, file: file, line: line)
        XCTAssertTrue(ctr(["task", "ls"]).stdout.contains("PAUSED"), file: file, line: line)
        XCTAssertEqual(ctr(["task", "resume", "d1"]).code, 0, file: file, line: line)
        XCTAssertTrue(ctr(["task", "ls"]).stdout.contains("RUNNING"), file: file, line: line)
        if metrics {
            r = ctr(["task", "metrics", "d1"])
            XCTAssertEqual(r.code, 0, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stdout.contains("d1"), r.stdout, file: file, line: line)
        }
        XCTAssertEqual(ctr(["task", "kill", "-s", "KILL", "d1"]).code, 0, file: file, line: line)
        XCTAssertTrue(waitFor("STOPPED"), file: file, line: line)
        r = ctr(["task", "delete", "d1"])
        XCTAssertEqual(r.code, 0, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains("137"), "exit status 137 reported: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(ctr(["container", "delete", "d1"]).code, 0, file: file, line: line)
        XCTAssertEqual(ctr(["task", "ls", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", file: file, line: line)
    }
}

/// A private work dir with the fixture rootfs packed as an OCI image archive; whatever a test
/// leaves (processes mentioning the dir, mounts below it) is removed afterwards.
class ImageTestCase: XCTestCase {
    var work: String!
    var image: String { work + "/busybox-oci.tar" }
    let ref = "docker.io/skiff/busybox:test"

    override func setUpWithError() throws {
        try Env.requireRoot()
        work = "/tmp/skiff-img-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let r = Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", Env.rootfs, image, ref])
        XCTAssertEqual(r.code, 0, r.stderr)
    }

    override func tearDown() {
        // Whatever a failed test left: processes whose command line names our dir, mounts below it.
        for pid in Host.processes(mentioning: work) { kill(pid, SIGKILL) }
        for m in Host.mounts(containing: work) {
            let mp = String(m.split(separator: " ")[4])
            Cmd.run("/bin/umount", ["-l", mp])
        }
        try? FileManager.default.removeItem(atPath: work)
        // Containers of the default namespace share the parent cgroup /default; the last one out
        // cannot remove it while a sibling is still there. Empty, it goes (rmdir fails otherwise).
        if let cg = Host.cgroupRoot { rmdir(cg + "/default") }
    }
}

/// A helper daemon for a test (a registry, a proxy): started with posix_spawn, output discarded,
/// SIGTERM and reaped on stop.
final class Background {
    var pid: pid_t = 0

    init(_ args: [String], env: [String: String]? = nil, log: String? = nil) {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        let argv = args.map { strdup($0) } + [nil]
        let envp = (env ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, args[0], &fa, nil, argv, envp), 0, "start \(args[0])")
    }

    /// Until `url` answers at all (any status), at most 5 s; TLS certificates are not checked.
    func waitForHTTP(_ url: String) {
        for _ in 0..<100 where Cmd.run("/usr/bin/curl", ["-sk", "-o", "/dev/null", url]).code != 0 { usleep(50_000) }
    }

    /// Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and reaps the process.
    func stop(_ sig: Int32 = SIGTERM) {
        guard pid > 0 else { return }
        kill(pid, sig)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        pid = 0
    }
}

/// O_PATH, a macro Swift's Glibc module does not import.
let oPath: Int32 = 0o10000000

extension Host {
    /// realpath(3): Foundation's resolvingSymlinksInPath leaves some links in place on Linux.
    static func realPath(_ p: String) -> String {
        guard let r = realpath(p, nil) else { return p }
        defer { free(r) }
        return String(cString: r)
    }
}

/// A host directory a container must never reach (CVE-2024-21626 class): a secret to read and a
/// place to write, both named by a climb of `..` that leads to them only from a host directory.
final class EscapeProbe {
    let dir: String
    let secret: String

    init() throws {
        let token = UUID().uuidString.prefix(8).lowercased()
        dir = "/tmp/skiff-escape-\(token)"
        secret = "HOST-SECRET-\(token)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try secret.write(toFile: dir + "/secret", atomically: true, encoding: .utf8)
    }

    /// A shell script for the container: from its cwd, read the secret and write `tag`.
    func script(_ tag: String) -> String {
        let up = String(repeating: "../", count: 24)
        return "cat \(up)\(dir.dropFirst())/secret 2>/dev/null; echo x > \(up)\(dir.dropFirst())/escaped-\(tag) 2>/dev/null; true"
    }

    /// What got through: the secret in `output`, or files written into the probe directory.
    func leaks(_ output: String) -> [String] {
        var out: [String] = []
        if output.contains(secret) { out.append("read the host secret") }
        let written = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0 != "secret" }
        out += written.map { "wrote \(dir)/\($0)" }
        return out
    }

    /// Every cwd a hostile config or image might use to reach a host fd: /proc/self/fd/3...64
    /// and the other magic links.
    static let hostileCwds = (3...64).map { "/proc/self/fd/\($0)" } + ["/proc/self/cwd", "/proc/self/root", "/proc/1/cwd", "/proc/1/root"]

    deinit { try? FileManager.default.removeItem(atPath: dir) }
}

/// A real unprivileged local user for a test, made with useradd and removed with userdel.
final class TestUser {
    let name: String
    let uid: uid_t
    let gid: gid_t

    init() throws {
        try Env.requireRoot()
        guard let useradd = Env.which("useradd"), Env.which("setpriv") != nil else { throw XCTSkip("useradd or setpriv missing") }
        name = "skifft" + String(UUID().uuidString.prefix(6)).lowercased()
        let r = Cmd.run(useradd, ["-M", "-N", "-g", "nogroup", "-s", "/bin/sh", name])
        guard r.code == 0 else { throw XCTSkip("useradd failed: \(r.stderr)") }
        guard let pw = getpwnam(name) else { throw XCTSkip("getpwnam \(name) failed") }
        uid = pw.pointee.pw_uid
        gid = pw.pointee.pw_gid
    }

    /// Runs a command as this user (no supplementary groups, no capabilities).
    @discardableResult
    func run(_ path: String, _ args: [String], cwd: String? = nil) -> CmdResult {
        Cmd.run(
            Env.which("setpriv")!, ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--inh-caps=-all", path] + args,
            cwd: cwd, env: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/"])
    }

    func sh(_ script: String) -> CmdResult { run("/bin/sh", ["-c", script]) }

    deinit {
        for pid in Host.processes(owner: uid) { kill(pid, SIGKILL) }
        Cmd.run(Env.which("userdel") ?? "/usr/sbin/userdel", ["-f", name])
    }
}

extension Host {
    /// `argv` wrapped to run in a private mount namespace with cgroup2 alone at /sys/fs/cgroup,
    /// when this host is hybrid (nil: nothing to do, run it as it is).
    static func inPureCgroupV2View(_ argv: [String]) -> (String, [String])? {
        guard let root = cgroupRoot, root != "/sys/fs/cgroup", let unshare = Env.which("unshare") else { return nil }
        let script = "umount -R -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\""
        return (unshare, ["-m", "--propagation", "private", "/bin/sh", "-c", script, "v2"] + argv)
    }

    /// Processes whose real uid is `uid`.
    static func processes(owner uid: uid_t) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.filter { pid in
            guard let st = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = st.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
            else { return false }
            return line.split(separator: "\t").dropFirst().first.map { uid_t($0) == uid } ?? false
        }
    }
}

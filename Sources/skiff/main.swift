import Glibc
import SkiffSys
import SkiffSpec
import SkiffRuntime

// A thin CLI over SkiffRuntime with runc's command-line surface. Synchronous, single-threaded.

let globalFlags: [FlagSpec] = [
    FlagSpec(names: ["root"], takesValue: true), FlagSpec(names: ["log"], takesValue: true),
    FlagSpec(names: ["log-format"], takesValue: true), FlagSpec(names: ["debug"], takesValue: false),
    FlagSpec(names: ["systemd-cgroup"], takesValue: false), FlagSpec(names: ["rootless"], takesValue: true),
    FlagSpec(names: ["criu"], takesValue: true), FlagSpec(names: ["version", "v"], takesValue: false),
    FlagSpec(names: ["help", "h"], takesValue: false), FlagSpec(names: ["skip-unavailable-cgroups"], takesValue: false),
]

/// Splits argv at the command: the global flags before it (one or two dashes, `=` or a separate
/// value) and the command's index.
func splitGlobalFlags(_ argv: [String]) -> (flags: [String], command: Int) {
    var i = 1
    var flags: [String] = []
    while i < argv.count, argv[i].hasPrefix("-") {
        flags.append(argv[i])
        let name = String(argv[i].drop(while: { $0 == "-" }))
        if !name.utf8.contains(UInt8(ascii: "=")), let spec = globalFlags.first(where: { $0.names.contains(name) }),
           spec.takesValue, i + 1 < argv.count {
            i += 1
            flags.append(argv[i])
        }
        i += 1
    }
    return (flags, i)
}

/// The commands that start container processes run from a view of this binary that those
/// processes cannot write (ExeGuard re-executes us: same pid, arguments and fds). First thing,
/// before the command tables below are built, so that the image we leave has done next to nothing.
let (globalArgs, commandIndex) = splitGlobalFlags(CommandLine.arguments)
if commandIndex < CommandLine.arguments.count, case let cmd = CommandLine.arguments[commandIndex],
   cmd == "create" || cmd == "run" || cmd == "exec" {
    do { _ = try ExeGuard.ensure() } catch {
        FS.writeStderr("\(cmd): \(error)\n")
        exit(1)
    }
}


let createFlags: [FlagSpec] = [
    FlagSpec(names: ["bundle", "b"], takesValue: true), FlagSpec(names: ["console-socket"], takesValue: true),
    FlagSpec(names: ["pidfd-socket"], takesValue: true), FlagSpec(names: ["pid-file"], takesValue: true),
    FlagSpec(names: ["no-pivot"], takesValue: false), FlagSpec(names: ["no-new-keyring"], takesValue: false),
    FlagSpec(names: ["preserve-fds"], takesValue: true),
]

let commands: [String: [FlagSpec]] = [
    "create": createFlags,
    "run": createFlags + [FlagSpec(names: ["detach", "d"], takesValue: false), FlagSpec(names: ["keep"], takesValue: false),
                          FlagSpec(names: ["no-subreaper"], takesValue: false)],
    "start": [], "state": [],
    "kill": [FlagSpec(names: ["all", "a"], takesValue: false)],
    "delete": [FlagSpec(names: ["force", "f"], takesValue: false)],
    "list": [FlagSpec(names: ["format", "f"], takesValue: true), FlagSpec(names: ["quiet", "q"], takesValue: false)],
    "spec": [FlagSpec(names: ["bundle", "b"], takesValue: true), FlagSpec(names: ["rootless"], takesValue: false)],
    "features": [],
    "exec": [FlagSpec(names: ["process", "p"], takesValue: true), FlagSpec(names: ["console-socket"], takesValue: true),
             FlagSpec(names: ["pidfd-socket"], takesValue: true), FlagSpec(names: ["cwd"], takesValue: true),
             FlagSpec(names: ["env", "e"], takesValue: true, repeatable: true), FlagSpec(names: ["tty", "t"], takesValue: false),
             FlagSpec(names: ["user", "u"], takesValue: true), FlagSpec(names: ["additional-gids", "g"], takesValue: true, repeatable: true),
             FlagSpec(names: ["detach", "d"], takesValue: false), FlagSpec(names: ["pid-file"], takesValue: true),
             FlagSpec(names: ["process-label"], takesValue: true), FlagSpec(names: ["apparmor"], takesValue: true),
             FlagSpec(names: ["no-new-privs"], takesValue: false), FlagSpec(names: ["cap", "c"], takesValue: true, repeatable: true),
             FlagSpec(names: ["preserve-fds"], takesValue: true), FlagSpec(names: ["cgroup"], takesValue: true, repeatable: true),
             FlagSpec(names: ["ignore-paused"], takesValue: false)],
    "ps": [FlagSpec(names: ["format", "f"], takesValue: true)],
    "pause": [], "resume": [],
    "events": [FlagSpec(names: ["interval"], takesValue: true), FlagSpec(names: ["stats"], takesValue: false)],
    "update": [FlagSpec(names: ["resources", "r"], takesValue: true)] + ["blkio-weight", "cpu-period", "cpu-quota", "cpu-burst",
        "cpu-share", "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "memory", "memory-reservation",
        "memory-swap", "cpu-idle", "pids-limit", "l3-cache-schema", "mem-bw-schema", "kernel-memory", "kernel-memory-tcp"]
        .map { FlagSpec(names: [$0], takesValue: true) },
]

/// exec and ps stop at the container id: everything after it is the command (or ps(1) options).
let stopsAtID: Set<String> = ["exec", "ps"]

let usage = """
skiff: an OCI container runtime (runc-compatible command line)

usage: skiff [global options] command [command options] [arguments...]

commands:
   create    create a container (blocked until start)
   start     run the user process of a created container
   run       create and start a container
   state     print the state of a container
   kill      send a signal to a container's init
   delete    delete a container and its resources
   list      list containers
   spec      write a default config.json
   features  print the supported features as JSON
   exec      run a new process in a running container
   ps        list the container's processes (--format json: host pids)
   pause     freeze all processes of a container (cgroup v2 freezer)
   update    change a running container's resource limits
   events    print stats (and oom) events as JSON lines
   resume    thaw a paused container

global options:
   --root DIR            state directory (default /run/skiff)
   --log FILE            log file (default stderr)
   --log-format FORMAT   text or json
   --debug               debug logging
   --systemd-cgroup      cgroupsPath is slice:prefix:name
   --version, -v         print the version

"""

func printOut(_ s: String) { FS.writeStdout(s) }

func fail(_ message: String, code: Int32 = 1) -> Never {
    let log = Logger.shared
    log.error(message)
    if log.toFile { _ = try? FS.writeAll(fd: 2, message + "\n") }
    exit(code)
}

func requireArgs(_ p: ParsedArgs, _ cmd: String, exactly n: Int, _ what: String) throws {
    if p.positional.count != n {
        throw CLIError.usage("\(quote(cmd)) requires exactly \(n) argument(s): \(what)")
    }
}

func main() -> Int32 {
    let argv = CommandLine.arguments
    let i = commandIndex
    let global: ParsedArgs
    do { global = try parseFlags(globalArgs[...], specs: globalFlags, stopAtPositional: false) } catch CLIError.usage(let m) {
        fail(m)
    } catch { fail("\(error)") }

    let log = Logger.shared
    if let f = global.string("log-format") {
        switch f {
        case "json": log.format = .json
        case "text": log.format = .text
        default: fail("invalid log-format \(quote(f)): use text or json")
        }
    }
    log.debugEnabled = global.bool("debug")
    if let path = global.string("log") {
        do { try log.open(path: FS.absolute(path)) } catch { fail("\(error)") }
    }
    if global.bool("version") {
        printOut("skiff version \(SkiffVersion.version)\nspec: \(SkiffVersion.spec)\n")
        return 0
    }
    guard i < argv.count else {
        printOut(usage)
        return global.bool("help") ? 0 : 1
    }
    let cmd = argv[i]
    guard let specs = commands[cmd] else {
        if cmd == "help" { printOut(usage); return 0 }
        fail("unknown command \(quote(cmd)); see `skiff --help`")
    }
    let rest = argv[(i + 1)...]
    if rest.contains("--help") || rest.contains("-h") { printOut(usage); return 0 }

    var rt = Runtime(root: global.string("root") ?? "/run/skiff")
    rt.systemdCgroup = global.bool("systemd-cgroup")
    // Also from the environment: containerd's runc shim and conmon pass no extra global flags.
    rt.skipUnavailableCgroups = global.bool("skip-unavailable-cgroups") || getenv("SKIFF_CGROUPS_SKIP_UNAVAILABLE").map { String(cString: $0) == "1" } == true

    do {
        let p = try parseFlags(rest, specs: specs, stopAtPositional: stopsAtID.contains(cmd))
        switch cmd {
        case "create", "run":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            var o = CreateOptions(bundle: p.string("bundle") ?? FS.cwd())
            o.pidFile = p.string("pid-file").map { FS.absolute($0) }
            o.consoleSocket = p.string("console-socket")
            o.noPivot = p.bool("no-pivot")
            o.preserveFds = try p.int("preserve-fds")
            let id = p.positional[0]
            do {
                if cmd == "create" {
                    try rt.create(id: id, options: o)
                    return 0
                }
                return try rt.run(id: id, options: o, detach: p.bool("detach"), keep: p.bool("keep"))
            } catch let e as SkiffError {
                throw e.wrapped("\(cmd) \(quote(id))")
            }
        case "start":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            try rt.start(id: p.positional[0])
        case "state":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            printOut(try JSON.encodeString(rt.state(id: p.positional[0]), pretty: true))
        case "kill":
            guard p.positional.count == 1 || p.positional.count == 2 else {
                throw CLIError.usage("\"kill\" requires 1 or 2 arguments: <container-id> [signal]")
            }
            let sig = try Signals.parse(p.positional.count == 2 ? p.positional[1] : "SIGTERM")
            try rt.kill(id: p.positional[0], signal: sig, all: p.bool("all"))
        case "delete":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            do { try rt.delete(id: p.positional[0], force: p.bool("force")) } catch let e as SkiffError where p.bool("force") && e.op.hasSuffix("does not exist") {
                return 0
            }
        case "list":
            let all = rt.list()
            if p.bool("quiet") {
                printOut(all.map { $0.id + "\n" }.joined())
            } else if p.string("format") == "json" {
                printOut(all.isEmpty ? "null\n" : try JSON.encodeString(all) + "\n")
            } else if let f = p.string("format"), f != "table" {
                throw CLIError.usage("invalid format \(quote(f)): use table or json")
            } else {
                printOut(listTable(all))
            }
        case "spec":
            let bundle = p.string("bundle") ?? FS.cwd()
            let path = FS.absolute(bundle) + "/config.json"
            if FS.exists(path) { throw SkiffError("spec", path, errno: EEXIST, hint: "remove it first") }
            let bytes = try JSON.encode(DefaultSpec.make(rootless: p.bool("rootless")), pretty: true)
            try FS.writeFile(path, String(decoding: bytes, as: UTF8.self) + "\n", flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o666)
        case "exec":
            guard let id = p.positional.first else { throw CLIError.usage("\"exec\" requires a container id") }
            do {
                return try rt.exec(id: id) { template in try execOptions(template, p) }
            } catch let e as SkiffError {
                fail("\(e.wrapped("exec \(quote(id))"))", code: 255)
            }
        case "ps":
            guard let id = p.positional.first else { throw CLIError.usage("\"ps\" requires a container id") }
            let pids = try rt.pids(id: id)
            if p.string("format") == "json" {
                printOut(pids.isEmpty ? "null\n" : "[" + pids.map(String.init).joined(separator: ",") + "]\n")
            } else {
                printOut(try psTable(pids: pids, psArgs: Array(p.positional.dropFirst())))
            }
        case "update":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            try rt.update(id: p.positional[0], resources: try updateResources(p))
        case "events":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            let interval = try goDurationMillis(p.string("interval") ?? "5s")
            try rt.events(id: p.positional[0], intervalMs: interval, once: p.bool("stats")) { printOut($0 + "\n") }
        case "pause":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            try rt.pause(id: p.positional[0])
        case "resume":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            try rt.resume(id: p.positional[0])
        case "features":
            printOut(try JSON.encodeString(Features.current(), pretty: true, indent: 4) + "\n")
        default:
            fail("unknown command \(cmd)")
        }
        return 0
    } catch CLIError.usage(let m) {
        fail(m)
    } catch {
        fail("\(error)")
    }
}

/// exec's process: `--process FILE`, or the container's own process config with the flags applied.
func execOptions(_ template: Process, _ p: ParsedArgs) throws -> ExecOptions {
    var proc: Process
    if let file = p.string("process") {
        proc = try JSON.decode(Process.self, from: try FS.readBytes(FS.absolute(file)), what: "process \(quote(file))")
    } else {
        let args = Array(p.positional.dropFirst())
        if args.isEmpty { throw CLIError.usage("exec needs a command, or --process FILE") }
        proc = template
        proc.args = args
        proc.terminal = p.bool("tty")
        if let cwd = p.string("cwd") { proc.cwd = cwd }
        var env = proc.env ?? []
        for kv in p.strings("env") {
            let key = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(kv.contains("=") ? kv : kv + "=")
        }
        proc.env = env
        if let u = p.string("user") {
            let parts = u.split(separator: ":", omittingEmptySubsequences: false)
            guard let uid = UInt32(parts[0]), parts.count <= 2, parts.count == 1 || UInt32(parts[1]) != nil else {
                throw CLIError.usage("invalid --user \(quote(u)): use uid[:gid] (numbers)")
            }
            proc.user.uid = uid
            proc.user.gid = parts.count == 2 ? UInt32(parts[1])! : proc.user.gid
        }
        let gids = try p.strings("additional-gids").map { g -> UInt32 in
            guard let n = UInt32(g) else { throw CLIError.usage("invalid --additional-gids \(quote(g))") }
            return n
        }
        if !gids.isEmpty { proc.user.additionalGids = gids }
        if p.bool("no-new-privs") { proc.noNewPrivileges = true }
        let caps = p.strings("cap")
        if !caps.isEmpty {
            var c = proc.capabilities ?? Capabilities()
            func add(_ l: [String]?) -> [String] { Array(Set((l ?? []) + caps)).sorted() }
            c.bounding = add(c.bounding); c.effective = add(c.effective); c.permitted = add(c.permitted)
            c.inheritable = add(c.inheritable); c.ambient = add(c.ambient)
            proc.capabilities = c
        }
    }
    var o = ExecOptions(process: proc)
    o.detach = p.bool("detach")
    o.pidFile = p.string("pid-file").map { FS.absolute($0) }
    o.consoleSocket = p.string("console-socket")
    o.preserveFds = try p.int("preserve-fds")
    o.ignorePaused = p.bool("ignore-paused")
    return o
}

/// runc's table: `ps -ef` (or the given ps options) filtered to the container's pids.
func psTable(pids: [pid_t], psArgs: [String]) throws -> String {
    let r = try Spawn.run(path: "/bin/ps", args: ["ps"] + (psArgs.isEmpty ? ["-ef"] : psArgs), env: ["PATH=/usr/bin:/bin"], stdin: [])
    let lines = String(decoding: r.output, as: UTF8.self).split(separator: "\n")
    guard let header = lines.first else { return "" }
    let cols = header.split(separator: " ")
    guard let pidCol = cols.firstIndex(of: "PID") else {
        throw SkiffError.msg("ps: no PID column in the output of ps \(psArgs.joined(separator: " "))")
    }
    let want = Set(pids)
    var out = String(header) + "\n"
    for l in lines.dropFirst() {
        let f = l.split(separator: " ")
        if f.count > pidCol, let pid = pid_t(f[pidCol]), want.contains(pid) { out += l + "\n" }
    }
    return out
}

/// `update --resources FILE|-` (OCI LinuxResources JSON), then the individual flags on top.
func updateResources(_ p: ParsedArgs) throws -> Resources {
    var r = Resources()
    if let src = p.string("resources") {
        let bytes = src == "-" ? try FS.readAll(fd: 0) : try FS.readBytes(FS.absolute(src))
        r = try JSON.decode(Resources.self, from: bytes, what: "resources")
    }
    func bytes(_ name: String) throws -> Int64? {
        guard let v = p.string(name) else { return nil }
        if v == "-1" { return -1 }
        let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
        var digits = v.lowercased()
        if digits.hasSuffix("b") { digits.removeLast() }
        var mult: Int64 = 1
        if let last = digits.last, let m = units[last] { mult = m; digits.removeLast() }
        guard let n = Int64(digits) else { throw CLIError.usage("invalid --\(name) \(quote(v))") }
        return n * mult
    }
    func num<T: FixedWidthInteger>(_ name: String, _ t: T.Type) throws -> T? {
        guard let v = p.string(name) else { return nil }
        guard let n = T(v) else { throw CLIError.usage("invalid --\(name) \(quote(v))") }
        return n
    }
    if p.string("kernel-memory") != nil || p.string("kernel-memory-tcp") != nil {
        throw SkiffError.msg("update: kernel memory limits are not supported on cgroup v2")
    }
    var mem = r.memory ?? Memory()
    if let v = try bytes("memory") { mem.limit = v }
    if let v = try bytes("memory-reservation") { mem.reservation = v }
    if let v = try bytes("memory-swap") { mem.swap = v }
    if mem.limit != nil || mem.reservation != nil || mem.swap != nil { r.memory = mem }
    var cpu = r.cpu ?? CPU()
    if let v = try num("cpu-share", UInt64.self) { cpu.shares = v }
    if let v = try num("cpu-quota", Int64.self) { cpu.quota = v }
    if let v = try num("cpu-period", UInt64.self) { cpu.period = v }
    if let v = try num("cpu-burst", UInt64.self) { cpu.burst = v }
    if let v = try num("cpu-idle", Int64.self) { cpu.idle = v }
    if let v = try num("cpu-rt-period", UInt64.self) { cpu.realtimePeriod = v }
    if let v = try num("cpu-rt-runtime", Int64.self) { cpu.realtimeRuntime = v }
    if let v = p.string("cpuset-cpus") { cpu.cpus = v }
    if let v = p.string("cpuset-mems") { cpu.mems = v }
    r.cpu = cpu
    if let v = try num("pids-limit", Int64.self) { r.pids = Pids(limit: v) }
    if let v = try num("blkio-weight", UInt16.self) { var b = r.blockIO ?? BlockIO(); b.weight = v; r.blockIO = b }
    return r
}

/// Go durations as runc takes them: "5s", "500ms", "1m", "1.5s".
func goDurationMillis(_ s: String) throws -> Int {
    let units: [(String, Double)] = [("ms", 1), ("us", 0.001), ("µs", 0.001), ("ns", 0.000001), ("s", 1000), ("m", 60000), ("h", 3600000)]
    for (u, mult) in units where s.hasSuffix(u) {
        if let v = Double(s.dropLast(u.count)), v > 0 { return max(1, Int(v * mult)) }
    }
    throw CLIError.usage("invalid duration \(quote(s)) for --interval (use 5s, 500ms, 1m)")
}

func listTable(_ all: [OCIState]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    let rows = all.map { [$0.id, "\($0.pid ?? 0)", $0.status, $0.bundle, $0.created ?? "", "root"] }
    var widths = header.map(\.count)
    for r in rows { for (j, c) in r.enumerated() { widths[j] = max(widths[j], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { j, c in j == r.count - 1 ? c : c + String(repeating: " ", count: widths[j] - c.count + 3) }.joined() + "\n"
    }
    return line(header) + rows.map(line).joined()
}

exit(main())

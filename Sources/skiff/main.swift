import Glibc
import SkiffSys
import SkiffSpec
import SkiffState
import SkiffRuntime

// A thin CLI over SkiffRuntime with runc's command-line surface. Synchronous, single-threaded.

let globalFlags: [FlagSpec] = [
    FlagSpec(["root"], value: true, "root directory for storage of container state (default: \"/run/skiff\", or $XDG_RUNTIME_DIR/skiff for a non-root user)"),
    FlagSpec(["log"], value: true, "set the log file to write skiff logs to (default is '/dev/stderr')"),
    FlagSpec(["log-format"], value: true, "set the log format ('text' (default), or 'json')"),
    FlagSpec(["debug"], "enable debug logging"),
    FlagSpec(["systemd-cgroup"], "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\""),
    FlagSpec(["rootless"], value: true, "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")"),
    FlagSpec(["criu"], value: true, "path to the criu binary used for checkpoint and restore (not supported)"),
    FlagSpec(["version", "v"], "print the version"),
    FlagSpec(["help", "h"], "show help"),
    FlagSpec(["skip-unavailable-cgroups"], "warn instead of failing for limits whose controller the cgroup v2 hierarchy lacks")
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
            spec.takesValue, i + 1 < argv.count
        {
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
    cmd == "create" || cmd == "run" || cmd == "exec"
{
    do { _ = try ExeGuard.ensure() } catch {
        FS.writeStderr("\(cmd): \(error)\n")
        exit(1)
    }
}

let createFlags: [FlagSpec] = [
    FlagSpec(["bundle", "b"], value: true, "path to the root of the bundle directory, defaults to the current directory"),
    FlagSpec(
        ["console-socket"], value: true,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    FlagSpec(["pidfd-socket"], value: true, "path to an AF_UNIX socket which will receive a file descriptor referencing the init process"),
    FlagSpec(["pid-file"], value: true, "specify the file to write the process id to"),
    FlagSpec(["no-pivot"], "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    FlagSpec(
        ["no-new-keyring"], "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"
    ),
    FlagSpec(["preserve-fds"], value: true, "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)")
]

let formatFlag = FlagSpec(["format", "f"], value: true, "select one of: table or json (default: \"table\")")

let commandList: [CommandSpec] = [
    CommandSpec(name: "create", summary: "create a container", usage: "[command options] <container-id>", flags: createFlags),
    CommandSpec(name: "start", summary: "executes the user defined process in a created container", usage: "<container-id>", flags: []),
    CommandSpec(
        name: "run", summary: "create and run a container", usage: "[command options] <container-id>",
        flags: createFlags + [
            FlagSpec(["detach", "d"], "detach from the container's process"),
            FlagSpec(["keep"], "do not delete the container after it exits"),
            FlagSpec(["no-subreaper"], "disable the use of the subreaper used to reap reparented processes")
        ]),
    CommandSpec(name: "state", summary: "output the state of a container", usage: "<container-id>", flags: []),
    CommandSpec(
        name: "kill", summary: "kill sends the specified signal (default: SIGTERM) to the container's init process",
        usage: "[command options] <container-id> [signal]",
        flags: [FlagSpec(["all", "a"], "send the specified signal to all processes inside the container")]),
    CommandSpec(
        name: "delete", summary: "delete any resources held by the container often used with detached container",
        usage: "[command options] <container-id>",
        flags: [FlagSpec(["force", "f"], "Forcibly deletes the container if it is still running (uses SIGKILL)")]),
    CommandSpec(
        name: "list", summary: "lists containers started by skiff with the given root", usage: "[command options]",
        flags: [formatFlag, FlagSpec(["quiet", "q"], "display only container IDs")]),
    CommandSpec(
        name: "spec", summary: "create a new specification file", usage: "[command options]",
        flags: [
            FlagSpec(["bundle", "b"], value: true, "path to the root of the bundle directory"),
            FlagSpec(["rootless"], "generate a configuration for a rootless container")
        ]),
    CommandSpec(name: "features", summary: "show the enabled features", usage: "", flags: []),
    CommandSpec(
        name: "exec", summary: "execute new process inside the container",
        usage: "[command options] <container-id> <command> [command options]  || -p process.json <container-id>",
        flags: [
            FlagSpec(
                ["console-socket"], value: true,
                "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
            FlagSpec(["pidfd-socket"], value: true, "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process"),
            FlagSpec(["cwd"], value: true, "current working directory in the container"),
            FlagSpec(["env", "e"], value: true, repeatable: true, "set environment variables"),
            FlagSpec(["tty", "t"], "allocate a pseudo-TTY"),
            FlagSpec(["user", "u"], value: true, "UID (format: <uid>[:<gid>])"),
            FlagSpec(["additional-gids", "g"], value: true, repeatable: true, "additional gids"),
            FlagSpec(["process", "p"], value: true, "path to the process.json"),
            FlagSpec(["detach", "d"], "detach from the container's process"),
            FlagSpec(["pid-file"], value: true, "specify the file to write the process id to"),
            FlagSpec(["process-label"], value: true, "set the asm process label for the process commonly used with selinux"),
            FlagSpec(["apparmor"], value: true, "set the apparmor profile for the process"),
            FlagSpec(["no-new-privs"], "set the no new privileges value for the process"),
            FlagSpec(["cap", "c"], value: true, repeatable: true, "add a capability to the bounding set for the process"),
            FlagSpec(["preserve-fds"], value: true, "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)"),
            FlagSpec(["cgroup"], value: true, repeatable: true, "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
            FlagSpec(["ignore-paused"], "allow exec in a paused container")
        ], stopsAtPositional: true),
    CommandSpec(
        name: "ps", summary: "ps displays the processes running inside a container", usage: "[command options] <container-id> [ps options]",
        flags: [formatFlag], stopsAtPositional: true),
    CommandSpec(name: "pause", summary: "pause suspends all processes inside the container", usage: "<container-id>", flags: []),
    CommandSpec(name: "resume", summary: "resumes all processes that have been previously paused", usage: "<container-id>", flags: []),
    CommandSpec(
        name: "events", summary: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        usage: "[command options] <container-id>",
        flags: [
            FlagSpec(["interval"], value: true, "set the stats collection interval (default: 5s)"),
            FlagSpec(["stats"], "display the container's stats then exit")
        ]),
    CommandSpec(
        name: "update", summary: "update container resource constraints", usage: "[command options] <container-id>",
        flags: [
            FlagSpec(["resources", "r"], value: true, "path to the file containing the resources to update or '-' to read from the standard input")
        ]
            + [
                ("blkio-weight", "Specifies per cgroup weight, range is from 10 to 1000 (default: 0)"),
                ("cpu-period", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
                ("cpu-quota", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
                ("cpu-burst", "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period"),
                ("cpu-share", "CPU shares (relative weight vs. other containers)"),
                ("cpu-rt-period", "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
                ("cpu-rt-runtime", "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
                ("cpuset-cpus", "CPU(s) to use"), ("cpuset-mems", "Memory node(s) to use"),
                ("memory", "Memory limit (in bytes)"), ("memory-reservation", "Memory reservation or soft_limit (in bytes)"),
                ("memory-swap", "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
                ("cpu-idle", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
                ("pids-limit", "Maximum number of pids allowed in the container"),
                ("l3-cache-schema", "The string of Intel RDT/CAT L3 cache schema"), ("mem-bw-schema", "The string of Intel RDT/MBA memory bandwidth schema"),
                ("kernel-memory", "(obsoleted; do not use)"), ("kernel-memory-tcp", "(obsoleted; do not use)")
            ]
            .map { FlagSpec([$0.0], value: true, $0.1) }),
    // runc's commands skiff has no backend for: they answer with a reason, not "unknown command".
    CommandSpec(
        name: "checkpoint", summary: "checkpoint a running container (not supported: skiff has no CRIU support)",
        usage: "[command options] <container-id>", flags: []),
    CommandSpec(
        name: "restore", summary: "restore a container from a previous checkpoint (not supported: skiff has no CRIU support)",
        usage: "[command options] <container-id>", flags: [])
]

let commands: [String: CommandSpec] = Dictionary(uniqueKeysWithValues: commandList.map { ($0.name, $0) })

/// The top-level help (made only when printed).
func usageText() -> String {
    var s = """
        NAME:
           skiff - an OCI container runtime (runc-compatible command line)

        USAGE:
           skiff [global options] command [command options] [arguments...]

        COMMANDS:

        """
    let width = commandList.map(\.name.count).max() ?? 0
    for c in commandList { s += "   " + c.name + String(repeating: " ", count: width - c.name.count + 2) + c.summary + "\n" }
    s += "   help" + String(repeating: " ", count: width - 2) + "Shows a list of commands or help for one command\n\nGLOBAL OPTIONS:\n"
    let fw = globalFlags.map(\.usage.count).max() ?? 0
    for f in globalFlags { s += "   " + f.usage + String(repeating: " ", count: fw - f.usage.count + 2) + f.help + "\n" }
    return s
}

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
        // runc's shape: name and version, commit, spec, libseccomp.
        printOut(
            "skiff version \(SkiffVersion.version)\ncommit: \(SkiffVersion.commit)\nspec: \(SkiffVersion.spec)\n" + "libseccomp: \(SkiffVersion.libseccomp)\n")
        return 0
    }
    guard i < argv.count else {
        printOut(usageText())
        return 0
    }
    let cmd = argv[i]
    let rest = argv[(i + 1)...]
    guard let spec = commands[cmd] else {
        if cmd == "help" {
            if let name = rest.first, let c = commands[name] { printOut(c.helpText) } else { printOut(usageText()) }
            return 0
        }
        fail("unknown command \(quote(cmd)); see `skiff --help`")
    }
    if let r = global.string("rootless"), !["true", "false", "auto"].contains(r) {
        fail("invalid --rootless value \(quote(r)): use true, false or auto")
    }

    // A relative root is under the working directory, as runc's filepath.Abs makes it (and, as
    // there, an error when the working directory is gone).
    let rootArg = global.string("root") ?? Rootless.defaultStateRoot()
    let root: String
    if rootArg.hasPrefix("/") {
        root = FS.clean(rootArg)
    } else if let wd = FS.workingDirectory() {
        root = FS.absolute(rootArg, base: wd)
    } else {
        fail("\(SkiffError("getcwd for --root", rootArg, errno: errno, hint: "a relative --root is taken from the working directory, which is gone"))")
    }
    var rt = Runtime(root: root)
    rt.rootless = global.string("rootless").flatMap { $0 == "auto" ? nil : $0 == "true" }
    rt.systemdCgroup = global.bool("systemd-cgroup")
    // Also from the environment: containerd's runc shim and conmon pass no extra global flags.
    rt.skipUnavailableCgroups = global.bool("skip-unavailable-cgroups") || getenv("SKIFF_CGROUPS_SKIP_UNAVAILABLE").map { String(cString: $0) == "1" } == true

    do {
        let p = try parseFlags(rest, specs: spec.allFlags, stopAtPositional: spec.stopsAtPositional)
        if p.bool("help") {
            printOut(spec.helpText)
            return 0
        }
        Logger.shared.debug("\(cmd): \(p.positional.first.map(quote) ?? "")")
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
            printOut(try JSON.encodeString(ContainerState(rt.state(id: p.positional[0]), owner: ""), pretty: true))
        case "kill":
            guard p.positional.count == 1 || p.positional.count == 2 else {
                throw CLIError.usage("\"kill\" requires 1 or 2 arguments: <container-id> [signal]")
            }
            let sig = try Signals.parse(p.positional.count == 2 ? p.positional[1] : "SIGTERM")
            try rt.kill(id: p.positional[0], signal: sig, all: p.bool("all"))
        case "delete":
            try requireArgs(p, cmd, exactly: 1, "<container-id>")
            do { try rt.delete(id: p.positional[0], force: p.bool("force")) } catch let e as SkiffError where p.bool("force") && e.kind == .notExist {
                return 0
            }
        case "list":
            let all = try rt.list()
            if p.bool("quiet") {
                printOut(all.map { $0.id + "\n" }.joined())
            } else if p.string("format") == "json" {
                printOut(all.isEmpty ? "null\n" : try JSON.encodeString(all.map { ContainerState($0, owner: owner(of: $0.id, root: rt.store)) }) + "\n")
            } else if let f = p.string("format"), f != "table" {
                throw CLIError.usage("invalid format \(quote(f)): use table or json")
            } else {
                printOut(listTable(all.map { ($0, owner(of: $0.id, root: rt.store)) }))
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
        case "checkpoint", "restore":
            throw SkiffError.msg(.unsupported, "\(cmd) is not supported: skiff has no CRIU support", hint: "checkpoint/restore needs runc with CRIU")
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
        if let a = p.string("apparmor") { proc.apparmorProfile = a }
        if let l = p.string("process-label") { proc.selinuxLabel = l }
        let caps = p.strings("cap")
        if !caps.isEmpty {
            // As runc ≥ 1.1.2 (CVE-2022-29162): never into the inheritable set, where it would
            // pass through the execve of any file with that inheritable file capability; into
            // ambient only where the config gave inheritable ones (else the kernel refuses it).
            var c = proc.capabilities ?? Capabilities()
            func add(_ l: [String]?) -> [String] { (l ?? []) + caps.filter { !(l ?? []).contains($0) } }
            c.bounding = add(c.bounding); c.effective = add(c.effective); c.permitted = add(c.permitted)
            if c.inheritable != nil { c.ambient = add(c.ambient) }
            proc.capabilities = c
        }
    }
    var o = ExecOptions(process: proc)
    o.detach = p.bool("detach")
    o.pidFile = p.string("pid-file").map { FS.absolute($0) }
    o.consoleSocket = p.string("console-socket")
    o.preserveFds = try p.int("preserve-fds")
    o.ignorePaused = p.bool("ignore-paused")
    let cgroups = p.strings("cgroup")
    if cgroups.count > 1 { throw CLIError.usage("exec --cgroup: cgroup v2 has one hierarchy: give one [<controller>:]<path>") }
    o.subCgroup = cgroups.first
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
        // A size, as runc's units.RAMInBytes: not negative (only -1, "no limit", above), and one
        // that fits in 64 bits (`99999999999t` overflowed: a trap, not an error).
        guard let n = Int64(digits), n >= 0 else { throw CLIError.usage("invalid --\(name) \(quote(v)): a size such as 512m, or -1 for no limit") }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: mult)
        if overflow { throw CLIError.usage("invalid --\(name) \(quote(v)): more than 2^63 bytes") }
        return bytes
    }
    func num<T: FixedWidthInteger>(_ name: String, _ t: T.Type) throws -> T? {
        guard let v = p.string(name) else { return nil }
        guard let n = T(v) else { throw CLIError.usage("invalid --\(name) \(quote(v))") }
        return n
    }
    if p.string("l3-cache-schema") != nil || p.string("mem-bw-schema") != nil {
        throw SkiffError.msg("update: Intel RDT schemas are not supported", hint: "skiff has no Intel RDT (resctrl) support")
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

/// runc's table: Go's tabwriter with a minimum cell width of 12 and a padding of 3.
func listTable(_ all: [(OCIState, String)]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    let rows = all.map { st, owner in [st.id, "\(st.pid ?? 0)", st.status, st.bundle, st.created ?? "", owner] }
    var widths = header.map { max($0.count, 9) }
    for r in rows { for (j, c) in r.enumerated() { widths[j] = max(widths[j], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { j, c in j == r.count - 1 ? c : c + String(repeating: " ", count: widths[j] - c.count + 3) }.joined() + "\n"
    }
    return line(header) + rows.map(line).joined()
}

/// The name of the user owning a container's state directory, as runc's list shows it ("#uid"
/// when /etc/passwd has no name for it; no NSS in a static binary).
func owner(of id: String, root store: StateStore) -> String {
    guard let st = FS.fileStat(store.dir(id)) else { return "" }
    let passwd = (try? FS.readString("/etc/passwd")) ?? ""
    for line in passwd.split(separator: "\n") {
        let f = line.split(separator: ":", omittingEmptySubsequences: false)
        if f.count > 2, UInt32(f[2]) == st.st_uid { return String(f[0]) }
    }
    return "#\(st.st_uid)"
}

exit(main())

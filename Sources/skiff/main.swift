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
    FlagSpec(names: ["help", "h"], takesValue: false),
]

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
]

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

global options:
   --root DIR            state directory (default /run/skiff)
   --log FILE            log file (default stderr)
   --log-format FORMAT   text or json
   --debug               debug logging
   --systemd-cgroup      cgroupsPath is slice:prefix:name
   --version, -v         print the version

"""

func printOut(_ s: String) {
    _ = try? FS.writeAll(fd: 1, s)
}

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
    var i = 1
    // Global flags stop at the first non-flag (the command).
    var globalArgs: [String] = []
    while i < argv.count, argv[i].hasPrefix("-") {
        globalArgs.append(argv[i])
        let name = String(argv[i].drop(while: { $0 == "-" }))
        if !name.contains("="), let spec = globalFlags.first(where: { $0.names.contains(name) }), spec.takesValue, i + 1 < argv.count {
            i += 1
            globalArgs.append(argv[i])
        }
        i += 1
    }
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

    do {
        let p = try parseFlags(rest, specs: specs, stopAtPositional: false)
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

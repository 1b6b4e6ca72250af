import Foundation
import ArgumentParser
import SkiffManager

/// skiffctl: a daemonless, ctr-like manager. Each command opens the store itself.
func env(_ key: String) -> String? { getenv(key).map { String(cString: $0) } }

struct Global: ParsableArguments {
    @Option(name: .long, help: "Config file (root, state).") var config = env("SKIFF_CONFIG") ?? Store.defaultConfigPath
    @Option(name: .long, help: "Root directory (content, snapshots, metadata).") var root: String? = env("SKIFF_ROOT")
    @Option(name: .long, help: "State directory (bundles, shim sockets).") var state: String? = env("SKIFF_STATE")
    @Option(name: [.short, .long], help: "Namespace (env SKIFF_NAMESPACE).") var namespace = env("SKIFF_NAMESPACE") ?? "default"

    func store() throws -> Store {
        let cfg = try Store.readConfig(config)
        return try Store(root: root ?? cfg["root"] ?? Store.defaultRoot, state: state ?? cfg["state"] ?? Store.defaultState, namespace: namespace)
    }
}

struct SkiffCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skiffctl", abstract: "A minimal daemonless container manager over containerd-shim-skiff-v2.",
        subcommands: [ConfigCommand.self, Namespaces.self, Images.self, Snapshots.self, Containers.self, Run.self])
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration.", subcommands: [Default.self])
    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "default", abstract: "Print the default config.")
        func run() { print(Store.defaultConfig, terminator: "") }
    }
}

struct Namespaces: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "namespaces", abstract: "Namespaces.", subcommands: [List.self, Create.self, Remove.self],
                                                    aliases: ["ns"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws { for n in try g.store().namespaces() { print(n) } }
    }
    struct Create: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var name: String
        func run() throws { try g.store().createNamespace(name) }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var name: String
        func run() throws { try g.store().removeNamespace(name) }
    }
}

struct Images: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "Images.", subcommands: [List.self, Import.self, Remove.self, Tag.self],
                                                    aliases: ["image", "i"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        @Flag(name: .short, help: "Names only.") var quiet = false
        func run() throws {
            let list = try ImageStore(try g.store()).list()
            if quiet { list.forEach { print($0.name) }; return }
            print("REF\tTYPE\tDIGEST\tSIZE")
            for i in list { print("\(i.name)\t\(i.target.mediaType)\t\(i.target.digest)\t\(i.target.size)") }
        }
    }
    struct Import: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: .long, help: "Name for images the archive does not name.") var baseName: String?
        @Argument var file: String
        func run() throws {
            for name in try ImageStore(try g.store()).importArchive(file, baseName: baseName) { print("imported \(name)") }
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var refs: [String]
        func run() throws { let s = ImageStore(try g.store()); for r in refs { try s.remove(r) } }
    }
    struct Tag: ParsableCommand {
        @OptionGroup var g: Global
        @Flag var force = false
        @Argument var source: String
        @Argument var target: String
        func run() throws { try ImageStore(try g.store()).tag(source, target, force: force) }
    }
}

struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snapshots", abstract: "Snapshots.", subcommands: [List.self],
                                                    aliases: ["snapshot"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            print("KEY\tPARENT\tKIND")
            for s in try Snapshotter(try g.store()).list() { print("\(s.key)\t\(s.parent ?? "")\t\(s.kind)") }
        }
    }
}

struct Containers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "containers", abstract: "Containers.", subcommands: [List.self],
                                                    aliases: ["container", "c"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            print("CONTAINER\tIMAGE\tRUNTIME")
            for c in try Tasks(try g.store(), shimBinary: shimPath()).containers() { print("\(c.id)\t\(c.image)\t\(c.runtime)") }
        }
    }
}

/// containerd-shim-skiff-v2 next to skiffctl, else on PATH.
func shimPath() -> String {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    let local = me + "/containerd-shim-skiff-v2"
    if FileManager.default.isExecutableFile(atPath: local) { return local }
    for dir in (env("PATH") ?? "").split(separator: ":") {
        let p = "\(dir)/containerd-shim-skiff-v2"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return local
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a container from an image through the shim.")
    @OptionGroup var g: Global
    @Flag(name: .long, help: "Remove the container when it exits.") var rm = false
    @Flag(name: .customLong("net-host"), help: "Use the host's network namespace.") var netHost = false
    @Flag(name: .customLong("null-io"), help: "Send the container's output to /dev/null.") var nullIO = false
    @Option(name: .customLong("log-uri"), help: "file:///path or binary:///path for the output.") var logURI: String?
    @Option(name: .long, parsing: .singleValue, help: "Environment variable K=V.") var env: [String] = []
    @Option(name: .long, help: "Working directory.") var cwd: String?
    @Option(name: [.short, .long], help: "uid[:gid].") var user: String?
    @Argument var image: String
    @Argument var id: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() throws {
        var o = RunOptions()
        o.image = image; o.id = id; o.args = command; o.env = env; o.cwd = cwd; o.user = user
        o.remove = rm; o.netHost = netHost; o.logURI = logURI; o.nullIO = nullIO
        let status = try Tasks(try g.store(), shimBinary: shimPath()).run(o, attachOutput: true)
        throw ExitCode(status)
    }
}

/// ctr's order: global options come before the command (`skiffctl -n ns images ls`). They are
/// handed to the subcommands' option group through the environment.
var args = Array(CommandLine.arguments.dropFirst())
let globalFlags = ["--root": "SKIFF_ROOT", "--state": "SKIFF_STATE", "--config": "SKIFF_CONFIG", "-n": "SKIFF_NAMESPACE", "--namespace": "SKIFF_NAMESPACE"]
while let first = args.first, first.hasPrefix("-") {
    var name = first, value: String?
    if let eq = first.firstIndex(of: "=") { name = String(first[..<eq]); value = String(first[first.index(after: eq)...]) }
    guard let key = globalFlags[name] else { break }
    args.removeFirst()
    if value == nil {
        guard !args.isEmpty else { SkiffCtl.exit(withError: ValidationError("\(name) needs a value")) }
        value = args.removeFirst()
    }
    setenv(key, value!, 1)
}
SkiffCtl.main(args)

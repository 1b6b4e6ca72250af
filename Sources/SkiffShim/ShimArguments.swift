import SkiffSys

/// The shim's command line as containerd writes it, with Go `flag` package rules: `-name value`,
/// `--name value` and `-name=value`; boolean flags take no value; the action word (`start`,
/// `delete`, or none for the daemon) is the first argument after the flags.
public struct ShimArguments: Equatable {
    public var namespace = ""
    public var address = ""
    public var publishBinary = ""
    public var id = ""
    public var bundle = ""
    public var socket = ""
    public var debug = false
    public var version = false
    public var info = false
    public var action = ""

    static let valueFlags: Set<String> = ["namespace", "address", "publish-binary", "id", "bundle", "socket"]
    static let boolFlags: Set<String> = ["debug", "v", "version", "info"]

    public init() {}

    public static func parse(_ argv: [String]) throws -> ShimArguments {
        var a = ShimArguments()
        var i = 0
        while i < argv.count {
            let arg = argv[i]
            guard arg.hasPrefix("-"), arg != "-", arg != "--" else {
                if arg == "--" { i += 1 }
                break
            }
            var name = String(arg.drop(while: { $0 == "-" }))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if boolFlags.contains(name) {
                let on = value.map { $0 == "true" || $0 == "1" } ?? true
                switch name {
                case "debug": a.debug = on
                case "info": a.info = on
                default: a.version = on
                }
            } else if valueFlags.contains(name) {
                if value == nil {
                    guard i + 1 < argv.count else { throw SkiffError.msg("flag needs an argument: -\(name)") }
                    i += 1
                    value = argv[i]
                }
                switch name {
                case "namespace": a.namespace = value!
                case "address": a.address = value!
                case "publish-binary": a.publishBinary = value!
                case "id": a.id = value!
                case "bundle": a.bundle = value!
                default: a.socket = value!
                }
            } else {
                throw SkiffError.msg("flag provided but not defined: -\(name)")
            }
            i += 1
        }
        if i < argv.count { a.action = argv[i] }
        return a
    }

    /// The daemon's own command line (no action word), as the runc shim re-executes itself.
    public var daemonArguments: [String] {
        var out = ["-namespace", namespace, "-id", id, "-address", address]
        if !publishBinary.isEmpty { out += ["-publish-binary", publishBinary] }
        if debug { out.append("-debug") }
        return out
    }
}

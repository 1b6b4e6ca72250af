/// runc-compatible argv parsing (urfave/cli v1 conventions): `-flag` and `--flag`, `--flag value`
/// and `--flag=value`, booleans as `--flag` or `--flag=true|false`, short aliases, and flags after
/// positional arguments except for commands that stop at the first positional (exec, ps).
struct FlagSpec {
    let names: [String]
    let takesValue: Bool
    var repeatable = false
    var help = ""

    init(_ names: [String], value: Bool = false, repeatable: Bool = false, _ help: String = "") {
        self.names = names; takesValue = value; self.repeatable = repeatable; self.help = help
    }

    /// `--name value, -n value` as runc's help prints it.
    var usage: String {
        names.map { ($0.count == 1 ? "-" : "--") + $0 + (takesValue ? " value" : "") }.joined(separator: ", ")
    }
}

/// One command: its flags and the text `skiff CMD --help` prints.
struct CommandSpec {
    let name: String
    let summary: String
    let usage: String
    var flags: [FlagSpec]
    /// exec and ps: everything after the container id belongs to the command (or to ps(1)).
    var stopsAtPositional = false

    static let helpFlag = FlagSpec(["help", "h"], "show help")

    var allFlags: [FlagSpec] { flags + [CommandSpec.helpFlag] }

    var helpText: String {
        var s = "NAME:\n   skiff \(name) - \(summary)\n\nUSAGE:\n   skiff \(name) \(usage)\n"
        let shown = allFlags
        if !shown.isEmpty {
            let width = shown.map(\.usage.count).max() ?? 0
            s += "\nOPTIONS:\n"
            for f in shown { s += "   " + f.usage + String(repeating: " ", count: width - f.usage.count + 2) + f.help + "\n" }
        }
        return s
    }
}

struct ParsedArgs {
    var values: [String: [String]] = [:]
    var positional: [String] = []

    func string(_ name: String) -> String? { values[name]?.last }
    func strings(_ name: String) -> [String] { values[name] ?? [] }
    func bool(_ name: String) -> Bool {
        guard let v = values[name]?.last else { return false }
        return v != "false" && v != "0"
    }
    func int(_ name: String) throws -> Int {
        guard let v = string(name) else { return 0 }
        guard let n = Int(v), n >= 0 else { throw CLIError.usage("invalid value \(v.debugDescription) for --\(name)") }
        return n
    }
}

enum CLIError: Error {
    case usage(String)
}

func parseFlags(_ args: ArraySlice<String>, specs: [FlagSpec], stopAtPositional: Bool) throws -> ParsedArgs {
    var out = ParsedArgs()
    var i = args.startIndex
    var onlyPositional = false
    while i < args.endIndex {
        let a = args[i]
        i += 1
        if onlyPositional || a == "-" || !a.hasPrefix("-") {
            out.positional.append(a)
            if stopAtPositional { onlyPositional = true }
            continue
        }
        if a == "--" { onlyPositional = true; continue }
        var name = String(a.drop(while: { $0 == "-" }))
        var inline: String? = nil
        if let eq = name.firstIndex(of: "=") {
            inline = String(name[name.index(after: eq)...])
            name = String(name[..<eq])
        }
        guard let spec = specs.first(where: { $0.names.contains(name) }) else {
            throw CLIError.usage("flag provided but not defined: -\(name)")
        }
        let key = spec.names[0]
        if spec.takesValue {
            var v: String
            if let inline {
                v = inline
            } else {
                guard i < args.endIndex else { throw CLIError.usage("flag needs an argument: -\(name)") }
                v = args[i]
                i += 1
            }
            if spec.repeatable { out.values[key, default: []].append(v) } else { out.values[key] = [v] }
        } else {
            out.values[key] = [inline ?? "true"]
        }
    }
    return out
}

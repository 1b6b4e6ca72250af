/// runc-compatible argv parsing (urfave/cli v1 conventions): `-flag` and `--flag`, `--flag value`
/// and `--flag=value`, booleans as `--flag` or `--flag=true|false`, short aliases, and flags after
/// positional arguments except for commands that stop at the first positional (exec, ps).
struct FlagSpec {
    let names: [String]
    let takesValue: Bool
    var repeatable = false
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
            if let inline { v = inline } else {
                guard i < args.endIndex else { throw CLIError.usage("flag needs an argument: -\(name)") }
                v = args[i]
                i += 1
            }
            if spec.repeatable { out.values[key, default: []].append(v) } else { out.values[key] = [v] }
            _ = v
        } else {
            out.values[key] = [inline ?? "true"]
        }
    }
    return out
}

import SkiffSys
import SkiffWire

/// Options for a runtime type containerd does not know come as runtimeoptions.v1.Options: a
/// path to a config file for the shim. Ours takes the runc options' keys and one of its own:
///
///     # [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff.options]
///     #   ConfigPath = "/etc/containerd/skiff.toml"     (or: ctr run --runtime-config-path FILE)
///     SkipUnavailableCgroups = true    # limits for controllers cgroup v2 lacks here: a warning
///     SystemdCgroup = false
///     Root = "/run/containerd/skiff"
///     BinaryName = ""                   # a runc-compatible binary instead of the in-process runtime
///     NoPivotRoot = false
struct RuntimeConfig {
    var runc = RuncOptions()
    var skipUnavailableCgroups: Bool?

    static func load(_ path: String) throws -> RuntimeConfig {
        var c = RuntimeConfig()
        let text = try withContext("runtime config") { try FS.readString(path) }
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map { String($0) } ?? ""
            let kv = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
            if kv.count < 2 { if !kv.joined().isEmpty { throw bad(path, n, "expected Key = value") }; continue }
            let (key, value) = (kv[0], kv[1])
            func bool() throws -> Bool {
                if value == "true" { return true }
                if value == "false" { return false }
                throw bad(path, n, "\(key) takes true or false")
            }
            func string() throws -> String {
                guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else { throw bad(path, n, "\(key) takes a quoted string") }
                return String(value.dropFirst().dropLast())
            }
            switch key {
            case "SkipUnavailableCgroups": c.skipUnavailableCgroups = try bool()
            case "SystemdCgroup": c.runc.systemdCgroup = try bool()
            case "NoPivotRoot": c.runc.noPivotRoot = try bool()
            case "Root": c.runc.root = try string()
            case "BinaryName": c.runc.binaryName = try string()
            default: throw bad(path, n, "unknown key \(quote(key))")
            }
        }
        return c
    }

    static func bad(_ path: String, _ n: Int, _ why: String) -> SkiffError {
        SkiffError("runtime config", path, detail: "line \(n + 1): \(why)")
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}

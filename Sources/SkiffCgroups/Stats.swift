import SkiffSys
import SkiffJSON

/// runc-shaped stats (types/events.go) read from cgroup v2 files; sections whose files are
/// missing (controller not enabled) are left out.
extension Cgroup2 {
    public func keyed(_ file: String) -> [String: UInt64]? {
        guard let s = try? FS.readString(directory + "/" + file) else { return nil }
        var d: [String: UInt64] = [:]
        for line in s.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { d[String(f[0])] = v }
        }
        return d
    }

    public func single(_ file: String) -> UInt64? {
        guard let s = try? FS.readString(directory + "/" + file) else { return nil }
        let t = s.split(separator: "\n").first.map(String.init) ?? ""
        return t == "max" ? UInt64.max : UInt64(t)
    }

    /// The OOM kill counter of memory.events (nil without the memory controller).
    public func oomKills() -> UInt64? { keyed("memory.events")?["oom_kill"] }

    public func stats() -> JSONValue {
        func n(_ v: UInt64) -> JSONValue { .number(String(v)) }
        var data: [(String, JSONValue)] = []
        if let c = keyed("cpu.stat") {
            let usage: JSONValue = .object([
                ("total", n((c["usage_usec"] ?? 0) * 1000)), ("kernel", n((c["system_usec"] ?? 0) * 1000)),
                ("user", n((c["user_usec"] ?? 0) * 1000))
            ])
            let thr: JSONValue = .object([
                ("periods", n(c["nr_periods"] ?? 0)), ("throttledPeriods", n(c["nr_throttled"] ?? 0)),
                ("throttledTime", n((c["throttled_usec"] ?? 0) * 1000))
            ])
            data.append(("cpu", .object([("usage", usage), ("throttling", thr)])))
        }
        if let cur = single("memory.current") {
            let raw = (keyed("memory.stat") ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) }
            var usage: [(String, JSONValue)] = [("usage", n(cur)), ("limit", n(single("memory.max") ?? UInt64.max))]
            if let peak = single("memory.peak") { usage.append(("max", n(peak))) }
            usage.append(("failcnt", n(keyed("memory.events")?["max"] ?? 0)))
            var mem: [(String, JSONValue)] = [("cache", n(keyed("memory.stat")?["file"] ?? 0)), ("usage", .object(usage))]
            if let sw = single("memory.swap.current") {
                mem.append(("swap", .object([("usage", n(sw)), ("limit", n(single("memory.swap.max") ?? UInt64.max))])))
            }
            mem.append(("raw", .object(raw)))
            data.append(("memory", .object(mem)))
        }
        if let cur = single("pids.current") {
            let lim = single("pids.max")
            data.append(("pids", .object([("current", n(cur)), ("limit", n(lim == UInt64.max ? 0 : lim ?? 0))])))
        }
        if let io = try? FS.readString(directory + "/io.stat") {
            var bytes: [JSONValue] = []
            var ios: [JSONValue] = []
            for line in io.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard let dev = f.first?.split(separator: ":"), dev.count == 2 else { continue }
                var kv: [String: UInt64] = [:]
                for p in f.dropFirst() {
                    let x = p.split(separator: "=")
                    if x.count == 2, let v = UInt64(x[1]) { kv[String(x[0])] = v }
                }
                func entry(_ op: String, _ v: UInt64) -> JSONValue {
                    .object([("major", .number(String(dev[0]))), ("minor", .number(String(dev[1]))), ("op", .string(op)), ("value", n(v))])
                }
                bytes += [entry("Read", kv["rbytes"] ?? 0), entry("Write", kv["wbytes"] ?? 0)]
                ios += [entry("Read", kv["rios"] ?? 0), entry("Write", kv["wios"] ?? 0)]
            }
            data.append(("blkio", .object([("ioServiceBytesRecursive", .array(bytes)), ("ioServicedRecursive", .array(ios))])))
        }
        if let files = try? FS.listDirectory(directory) {
            var huge: [(String, JSONValue)] = []
            for f in files where f.hasPrefix("hugetlb.") && f.hasSuffix(".current") && !f.contains(".rsvd.") {
                let size = String(f.dropFirst(8).dropLast(8))
                huge.append(
                    (
                        size,
                        .object([
                            ("usage", n(single(f) ?? 0)), ("max", n(single("hugetlb.\(size).max") ?? 0)),
                            ("failcnt", n(keyed("hugetlb.\(size).events")?["max"] ?? 0))
                        ])
                    ))
            }
            if !huge.isEmpty { data.append(("hugetlb", .object(huge))) }
        }
        return .object(data)
    }
}

import SkiffSys
import SkiffJSON

/// runc-shaped stats (types/events.go) read from cgroup v2 files.
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

    /// `events --stats` data as runc 1.1 prints it on cgroup v2 (its fs2 stats converted to
    /// types/events.go): every section present, Go's omitempty applied (zero numbers and empty
    /// lists left out), fields in the struct's order, map keys sorted. runc's quirks included:
    /// swap is reported as memory+swap (cgroup v1's meaning), the pids count comes from
    /// cgroup.procs without the pids controller, and cpuset and intel_rdt are never filled.
    public func stats() -> JSONValue {
        func n(_ v: UInt64) -> JSONValue { .number(String(v)) }
        func omitEmpty(_ m: inout [(String, JSONValue)], _ k: String, _ v: UInt64) { if v != 0 { m.append((k, n(v))) } }

        let c = keyed("cpu.stat") ?? [:]
        var usage: [(String, JSONValue)] = []
        omitEmpty(&usage, "total", (c["usage_usec"] ?? 0) &* 1000)
        usage += [("kernel", n((c["system_usec"] ?? 0) &* 1000)), ("user", n((c["user_usec"] ?? 0) &* 1000))]
        var throttling: [(String, JSONValue)] = []
        omitEmpty(&throttling, "periods", c["nr_periods"] ?? 0)
        omitEmpty(&throttling, "throttledPeriods", c["nr_throttled"] ?? 0)
        omitEmpty(&throttling, "throttledTime", (c["throttled_usec"] ?? 0) &* 1000)
        let cpu: JSONValue = .object([("usage", .object(usage)), ("throttling", .object(throttling))])

        let cpuset: JSONValue = .object(
            [
                "cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level"
            ].map { ($0, n(0)) })

        func entry(limit: UInt64, usage: UInt64) -> JSONValue {
            var e: [(String, JSONValue)] = [("limit", n(limit))]
            omitEmpty(&e, "usage", usage)
            return .object(e + [("failcnt", n(0))])
        }
        var memory: [(String, JSONValue)] = []
        var memUsage: (limit: UInt64, usage: UInt64) = (0, 0)
        var swap: (limit: UInt64, usage: UInt64) = (0, 0)
        let raw = keyed("memory.stat")
        if let raw, let cur = single("memory.current") {
            memUsage = (single("memory.max") ?? 0, cur)
            if let sw = single("memory.swap.current") { swap = (single("memory.swap.max") ?? 0, sw) }
            swap.usage &+= memUsage.usage
            if swap.limit != UInt64.max { swap.limit &+= memUsage.limit }
        }
        omitEmpty(&memory, "cache", raw?["file"] ?? 0)
        memory += [
            ("usage", entry(limit: memUsage.limit, usage: memUsage.usage)), ("swap", entry(limit: swap.limit, usage: swap.usage)),
            ("kernel", entry(limit: 0, usage: 0)), ("kernelTCP", entry(limit: 0, usage: 0))
        ]
        if let raw, !raw.isEmpty { memory.append(("raw", .object(raw.sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) }))) }

        var pids: [(String, JSONValue)] = []
        if let cur = single("pids.current") {
            omitEmpty(&pids, "current", cur)
            let lim = single("pids.max") ?? 0
            omitEmpty(&pids, "limit", lim == UInt64.max ? 0 : lim)
        } else {
            omitEmpty(&pids, "current", UInt64((try? procs())?.count ?? 0))
        }

        var blkio: [(String, JSONValue)] = []
        if let io = try? FS.readString(directory + "/io.stat") {
            var bytes: [JSONValue] = []
            var ios: [JSONValue] = []
            for line in io.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard let dev = f.first?.split(separator: ":"), dev.count == 2, let major = UInt64(dev[0]), let minor = UInt64(dev[1]) else { continue }
                for p in f.dropFirst() {
                    let x = p.split(separator: "=")
                    guard x.count == 2, let v = UInt64(x[1]) else { continue }
                    // runc's mapping to cgroup v1's tables: bytes and operations, read and written.
                    let (op, isBytes): (String, Bool)
                    switch x[0] {
                    case "rbytes": (op, isBytes) = ("Read", true)
                    case "wbytes": (op, isBytes) = ("Write", true)
                    case "rios": (op, isBytes) = ("Read", false)
                    case "wios": (op, isBytes) = ("Write", false)
                    default: continue
                    }
                    var e: [(String, JSONValue)] = []
                    omitEmpty(&e, "major", major)
                    omitEmpty(&e, "minor", minor)
                    e.append(("op", .string(op)))
                    omitEmpty(&e, "value", v)
                    if isBytes { bytes.append(.object(e)) } else { ios.append(.object(e)) }
                }
            }
            if !bytes.isEmpty { blkio.append(("ioServiceBytesRecursive", .array(bytes))) }
            if !ios.isEmpty { blkio.append(("ioServicedRecursive", .array(ios))) }
        }

        var huge: [(String, JSONValue)] = []
        for f in ((try? FS.listDirectory(directory)) ?? []).sorted() where f.hasPrefix("hugetlb.") && f.hasSuffix(".current") && !f.contains(".rsvd.") {
            let size = String(f.dropFirst(8).dropLast(8))
            var h: [(String, JSONValue)] = []
            omitEmpty(&h, "usage", single(f) ?? 0)
            huge.append((size, .object(h + [("failcnt", n(keyed("hugetlb.\(size).events")?["max"] ?? 0))])))
        }

        return .object([
            ("cpu", cpu), ("cpuset", cpuset), ("memory", .object(memory)), ("pids", .object(pids)), ("blkio", .object(blkio)),
            ("hugetlb", .object(huge)), ("intel_rdt", .object([])), ("network_interfaces", .null)
        ])
    }
}

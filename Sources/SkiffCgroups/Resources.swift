import Glibc
import SkiffSys
import SkiffSpec

/// linux.resources → cgroup v2 files. `plan` is pure (unit-tested without a cgroupfs); `apply`
/// enables the needed controllers along the path and writes the files.
public struct ResourceWrite: Equatable, Sendable {
    public let controller: String
    public let file: String
    public let value: String
}

public enum CgroupResources {
    /// runc's conversion of cgroup v1 cpu.shares [2, 262144] to cgroup v2 cpu.weight [1, 10000].
    public static func cpuWeight(shares: UInt64) -> UInt64 {
        if shares == 0 { return 0 }
        let s = min(max(shares, 2), 262144)
        return 1 + ((s - 2) * 9999) / 262142
    }

    /// blkio weight [10, 1000] → io.weight [1, 10000].
    public static func ioWeight(_ w: UInt16) -> UInt64 {
        let v = UInt64(min(max(w, 10), 1000))
        return 1 + ((v - 10) * 9999) / 990
    }

    static func maxOrValue(_ v: Int64) -> String { v < 0 ? "max" : String(v) }

    /// The writes `r` asks for, in a stable order, plus warnings for what v2 cannot do.
    public static func plan(_ r: Resources) throws -> (writes: [ResourceWrite], warnings: [String]) {
        var w: [ResourceWrite] = []
        var warnings: [String] = []
        func add(_ c: String, _ f: String, _ v: String) { w.append(ResourceWrite(controller: c, file: f, value: v)) }
        if r.network != nil { warnings.append("linux.resources.network (net_cls, net_prio) is cgroup v1 only; ignored on cgroup v2") }
        if let m = r.memory {
            if let l = m.limit { add("memory", "memory.max", maxOrValue(l)) }
            if let res = m.reservation { add("memory", "memory.low", maxOrValue(res)) }
            if let s = m.swap {
                // v1's swap is memory+swap; v2's memory.swap.max is swap alone.
                if s < 0 {
                    add("memory", "memory.swap.max", "max")
                } else {
                    guard let l = m.limit, l >= 0 else {
                        throw SkiffError.msg("resources: memory.swap needs memory.limit on cgroup v2")
                    }
                    if s < l { throw SkiffError.msg("resources: memory.swap (\(s)) must be at least memory.limit (\(l))") }
                    add("memory", "memory.swap.max", String(s - l))
                }
            }
            if m.swappiness != nil { warnings.append("memory.swappiness is not supported on cgroup v2; ignored") }
            if m.kernel != nil || m.kernelTCP != nil { warnings.append("kernel memory limits are not supported on cgroup v2; ignored") }
            if m.disableOOMKiller == true { warnings.append("disableOOMKiller is not supported on cgroup v2; ignored") }
        }
        if let c = r.cpu {
            if (c.realtimeRuntime ?? 0) != 0 || (c.realtimePeriod ?? 0) != 0 {
                throw SkiffError.msg("resources: cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2")
            }
            if let s = c.shares, s != 0 { add("cpu", "cpu.weight", String(cpuWeight(shares: s))) }
            if c.quota != nil || c.period != nil {
                let q = c.quota.map { $0 <= 0 ? "max" : String($0) } ?? "max"
                add("cpu", "cpu.max", "\(q) \(c.period ?? 100000)")
            }
            if let b = c.burst { add("cpu", "cpu.max.burst", String(b)) }
            if let i = c.idle { add("cpu", "cpu.idle", String(i)) }
            if let cpus = c.cpus, !cpus.isEmpty { add("cpuset", "cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty { add("cpuset", "cpuset.mems", mems) }
        }
        if let p = r.pids { add("pids", "pids.max", p.limit <= 0 ? "max" : String(p.limit)) }
        if let b = r.blockIO {
            if let wt = b.weight, wt != 0 { add("io", "io.weight", "default \(ioWeight(wt))") }
            for d in b.weightDevice ?? [] { if let wt = d.weight { add("io", "io.weight", "\(d.major):\(d.minor) \(ioWeight(wt))") } }
            for (list, key) in [
                (b.throttleReadBpsDevice, "rbps"), (b.throttleWriteBpsDevice, "wbps"),
                (b.throttleReadIOPSDevice, "riops"), (b.throttleWriteIOPSDevice, "wiops")
            ] {
                for d in list ?? [] { add("io", "io.max", "\(d.major):\(d.minor) \(key)=\(d.rate == 0 ? "max" : String(d.rate))") }
            }
        }
        for h in r.hugepageLimits ?? [] {
            // A page size names a file ("2MB", "1GB"): nothing else may reach the path.
            guard h.pageSize.utf8.count <= 8, h.pageSize.hasSuffix("B"),
                h.pageSize.dropLast().allSatisfy({ $0.isASCII && ($0.isNumber || "KMGTP".contains($0)) }), h.pageSize.first?.isNumber == true
            else { throw SkiffError.msg("resources: invalid hugepage size \(quote(h.pageSize))", hint: "a size such as 2MB or 1GB") }
            add("hugetlb", "hugetlb.\(h.pageSize).max", String(h.limit))
        }
        for (dev, l) in (r.rdma ?? [:]).sorted(by: { $0.key < $1.key }) {
            var parts: [String] = []
            if let h = l.hcaHandles { parts.append("hca_handle=\(h)") }
            if let o = l.hcaObjects { parts.append("hca_object=\(o)") }
            if !parts.isEmpty { add("rdma", "rdma.max", "\(dev) " + parts.joined(separator: " ")) }
        }
        for (key, value) in (r.unified ?? [:]).sorted(by: { $0.key < $1.key }) {
            if key.contains("/") || key.hasPrefix(".") || !key.contains(".") {
                throw SkiffError.msg("resources: invalid unified key \(quote(key))")
            }
            // Not limits: these move processes (any host pid) into the container's cgroup, or
            // kill what is in it. runc writes them as given; the spec lists no such use.
            if ["cgroup.procs", "cgroup.threads", "cgroup.kill"].contains(key) {
                throw SkiffError.msg("resources: unified key \(quote(key)) is not a resource", hint: "it moves or kills processes")
            }
            let ctrl = String(key.split(separator: ".")[0])
            add(ctrl == "cgroup" ? "" : ctrl, key, value)
        }
        return (w, warnings)
    }
}

extension Cgroup2 {
    /// Controllers the hierarchy offers at its root.
    public func availableControllers() -> Set<String> {
        Set(((try? FS.readString(mountpoint + "/cgroup.controllers")) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// Enables `controllers` in every ancestor's cgroup.subtree_control, from the root down.
    func enable(_ controllers: Set<String>) throws {
        guard !controllers.isEmpty else { return }
        var dir = mountpoint
        let comps = path.split(separator: "/")
        for comp in comps {
            let have = Set(((try? FS.readString(dir + "/cgroup.subtree_control")) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            for c in controllers.sorted() where !have.contains(c) {
                try withContext("enable controller \(c)") {
                    try FS.writeFile(dir + "/cgroup.subtree_control", "+" + c, flags: O_WRONLY)
                }
            }
            dir += "/" + comp
        }
    }

    /// Applies resources. A controller the hierarchy lacks is an error naming it and the host's
    /// cgroup mode, unless `skipUnavailable`, where it becomes a warning.
    public func apply(_ r: Resources, skipUnavailable: Bool, warn: (String) -> Void) throws {
        let (writes, warnings) = try CgroupResources.plan(r)
        warnings.forEach(warn)
        let available = availableControllers()
        var missing = Set<String>()
        for w in writes where !w.controller.isEmpty && !available.contains(w.controller) { missing.insert(w.controller) }
        if !missing.isEmpty {
            let names = missing.sorted().joined(separator: ", ")
            let msg = "cgroup controller(s) \(names) not available in the cgroup v2 hierarchy at \(mountpoint) (host cgroup mode: \(Cgroup2.hostMode()))"
            if !skipUnavailable {
                throw SkiffError.msg(
                    msg,
                    hint:
                        "run on a cgroup v2 host, drop those limits, or pass --skip-unavailable-cgroups (env SKIFF_CGROUPS_SKIP_UNAVAILABLE=1, annotation org.skiff.cgroups.skip-unavailable=true)"
                )
            }
            warn(msg + "; limits for them are skipped")
        }
        let usable = writes.filter { $0.controller.isEmpty || !missing.contains($0.controller) }
        try enable(Set(usable.map(\.controller).filter { !$0.isEmpty }))
        for w in usable {
            try withContext("set \(w.file)") {
                try FS.writeFile(directory + "/" + w.file, w.value, flags: O_WRONLY)
            }
        }
    }
}

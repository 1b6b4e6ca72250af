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

    /// runc's reading of a v2 memory value: 0 leaves it as it is, -1 is no limit, any other
    /// negative number is not a size (it used to become "no limit").
    static func memoryValue(_ field: String, _ v: Int64) throws -> String? {
        if v == 0 { return nil }
        if v == -1 { return "max" }
        if v < 0 { throw SkiffError.msg("resources: memory.\(field) \(v) is not a size", hint: "-1 is no limit; 0 leaves it as it is") }
        return String(v)
    }

    /// The writes `r` asks for, in a stable order, plus warnings for what v2 cannot do.
    public static func plan(_ r: Resources) throws -> (writes: [ResourceWrite], warnings: [String]) {
        var w: [ResourceWrite] = []
        var warnings: [String] = []
        func add(_ c: String, _ f: String, _ v: String) { w.append(ResourceWrite(controller: c, file: f, value: v)) }
        if r.network != nil { warnings.append("linux.resources.network (net_cls, net_prio) is cgroup v1 only; ignored on cgroup v2") }
        if let m = r.memory {
            if let l = m.limit, let v = try memoryValue("limit", l) { add("memory", "memory.max", v) }
            if let res = m.reservation, let v = try memoryValue("reservation", res) { add("memory", "memory.low", v) }
            // v1's swap is memory+swap; v2's memory.swap.max is swap alone (runc's conversion:
            // 0 leaves it, -1 is no limit, anything else needs a memory limit to subtract).
            if let s = m.swap, s != 0 {
                if s == -1 {
                    add("memory", "memory.swap.max", "max")
                } else {
                    if s < 0 { throw SkiffError.msg("resources: memory.swap \(s) is not a size", hint: "-1 is no limit; 0 leaves it as it is") }
                    guard let l = m.limit, l > 0 else {
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
            if let s = c.shares, s != 0 {
                // Outside v1's range the conversion has no v2 weight (runc's write fails there).
                guard (2...262144).contains(s) else { throw SkiffError.msg("resources: cpu.shares \(s) is outside 2 to 262144") }
                add("cpu", "cpu.weight", String(cpuWeight(shares: s)))
            }
            // runc's cpu.max: a quota of 0 and a period of 0 leave it; a period of 0 keeps the
            // cgroup's own period (it used to write 100000, or "Q 0", which the kernel refuses).
            let quota = c.quota ?? 0, period = c.period ?? 0
            if quota != 0 || period != 0 { add("cpu", "cpu.max", (quota > 0 ? String(quota) : "max") + (period != 0 ? " \(period)" : "")) }
            if let b = c.burst { add("cpu", "cpu.max.burst", String(b)) }
            if let i = c.idle { add("cpu", "cpu.idle", String(i)) }
            if let cpus = c.cpus, !cpus.isEmpty { add("cpuset", "cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty { add("cpuset", "cpuset.mems", mems) }
        }
        // runc's pids: 0 leaves the limit as it is (it used to lift it), a negative one is none.
        if let p = r.pids, p.limit != 0 { add("pids", "pids.max", p.limit < 0 ? "max" : String(p.limit)) }
        if let b = r.blockIO {
            // A blkio weight is 10 to 1000; another one was quietly clamped.
            func checkWeight(_ wt: UInt16) throws {
                guard (10...1000).contains(wt) else { throw SkiffError.msg("resources: blockIO weight \(wt) is outside 10 to 1000") }
            }
            if let wt = b.weight, wt != 0 {
                try checkWeight(wt)
                add("io", "io.weight", "default \(ioWeight(wt))")
            }
            for d in b.weightDevice ?? [] {
                if let wt = d.weight {
                    try checkWeight(wt)
                    add("io", "io.weight", "\(d.major):\(d.minor) \(ioWeight(wt))")
                }
            }
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

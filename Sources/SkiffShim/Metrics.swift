import SkiffSys
import SkiffCgroups
import SkiffWire

/// Task.Stats: io.containerd.cgroups.v2.Metrics from the container's cgroup files. Where the v2
/// hierarchy lacks the memory or pids controller (a hybrid host), memory and pids come from
/// /proc of the cgroup's processes instead, so a CRI client always finds a working set and a
/// count (`source` says which was used).
enum CgroupMetrics {
    enum Source: String { case cgroup = "cgroup", proc = "/proc of the cgroup's processes" }

    static func read(_ cg: Cgroup2) -> Metrics { read(cg, memorySource: nil) }

    static func read(_ cg: Cgroup2, memorySource: UnsafeMutablePointer<Source>?) -> Metrics {
        var m = Metrics()
        if let cur = cg.single("pids.current") {
            var pids = PidsStat()
            pids.current = cur
            let lim = cg.single("pids.max") ?? 0
            pids.limit = lim == UInt64.max ? 0 : lim
            m.pids = pids
        }
        if let c = cg.keyed("cpu.stat") {
            var cpu = CPUStat()
            cpu.usageUsec = c["usage_usec"] ?? 0
            cpu.userUsec = c["user_usec"] ?? 0
            cpu.systemUsec = c["system_usec"] ?? 0
            cpu.nrPeriods = c["nr_periods"] ?? 0
            cpu.nrThrottled = c["nr_throttled"] ?? 0
            cpu.throttledUsec = c["throttled_usec"] ?? 0
            m.cpu = cpu
        }
        if let s = cg.keyed("memory.stat") {
            var mem = MemoryStat()
            mem.anon = s["anon"] ?? 0
            mem.file = s["file"] ?? 0
            mem.kernelStack = s["kernel_stack"] ?? 0
            mem.slab = s["slab"] ?? 0
            mem.sock = s["sock"] ?? 0
            mem.shmem = s["shmem"] ?? 0
            mem.fileMapped = s["file_mapped"] ?? 0
            mem.fileDirty = s["file_dirty"] ?? 0
            mem.fileWriteback = s["file_writeback"] ?? 0
            mem.anonThp = s["anon_thp"] ?? 0
            mem.inactiveAnon = s["inactive_anon"] ?? 0
            mem.activeAnon = s["active_anon"] ?? 0
            mem.inactiveFile = s["inactive_file"] ?? 0
            mem.activeFile = s["active_file"] ?? 0
            mem.unevictable = s["unevictable"] ?? 0
            mem.slabReclaimable = s["slab_reclaimable"] ?? 0
            mem.slabUnreclaimable = s["slab_unreclaimable"] ?? 0
            mem.pgfault = s["pgfault"] ?? 0
            mem.pgmajfault = s["pgmajfault"] ?? 0
            mem.workingsetRefault = s["workingset_refault"] ?? s["workingset_refault_file"] ?? 0
            mem.workingsetActivate = s["workingset_activate"] ?? s["workingset_activate_file"] ?? 0
            mem.workingsetNodereclaim = s["workingset_nodereclaim"] ?? 0
            mem.pgrefill = s["pgrefill"] ?? 0
            mem.pgscan = s["pgscan"] ?? 0
            mem.pgsteal = s["pgsteal"] ?? 0
            mem.pgactivate = s["pgactivate"] ?? 0
            mem.pgdeactivate = s["pgdeactivate"] ?? 0
            mem.pglazyfree = s["pglazyfree"] ?? 0
            mem.pglazyfreed = s["pglazyfreed"] ?? 0
            mem.thpFaultAlloc = s["thp_fault_alloc"] ?? 0
            mem.thpCollapseAlloc = s["thp_collapse_alloc"] ?? 0
            mem.usage = cg.single("memory.current") ?? 0
            mem.usageLimit = cg.single("memory.max") ?? 0
            mem.swapUsage = cg.single("memory.swap.current") ?? 0
            mem.swapLimit = cg.single("memory.swap.max") ?? 0
            mem.maxUsage = cg.single("memory.peak") ?? 0
            m.memory = mem
        }
        if m.memory == nil || m.pids == nil {
            let pids = (try? FS.readString(cg.directory + "/cgroup.procs"))?.split(separator: "\n").compactMap { Int32($0) } ?? []
            if m.pids == nil {
                var p = PidsStat()
                p.current = UInt64(pids.count)
                m.pids = p
            }
            if m.memory == nil {
                // Resident memory, anonymous and file-backed (shared pages counted once per
                // process, as a sum of RSS does): CRI's working set is usage - inactive_file.
                var mem = MemoryStat()
                for pid in pids {
                    guard let status = try? FS.readString("/proc/\(pid)/status") else { continue }
                    for line in status.split(separator: "\n") {
                        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                        guard f.count >= 2, let kb = UInt64(f[1]) else { continue }
                        switch f[0] {
                        case "VmRSS:": mem.usage += kb * 1024
                        case "RssAnon:": mem.anon += kb * 1024
                        case "RssFile:": mem.file += kb * 1024
                        case "RssShmem:": mem.shmem += kb * 1024
                        default: break
                        }
                    }
                }
                m.memory = mem
                memorySource?.pointee = .proc
            }
        }
        if let e = cg.keyed("memory.events") {
            var ev = MemoryEvents()
            ev.low = e["low"] ?? 0
            ev.high = e["high"] ?? 0
            ev.max = e["max"] ?? 0
            ev.oom = e["oom"] ?? 0
            ev.oomKill = e["oom_kill"] ?? 0
            m.memoryEvents = ev
        }
        if let io = try? FS.readString(cg.directory + "/io.stat") {
            var stat = IOStat()
            for line in io.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard let dev = f.first?.split(separator: ":"), dev.count == 2,
                    let major = UInt64(dev[0]), let minor = UInt64(dev[1])
                else { continue }
                var entry = IOEntry()
                entry.major = major
                entry.minor = minor
                for p in f.dropFirst() {
                    let kv = p.split(separator: "=")
                    guard kv.count == 2, let v = UInt64(kv[1]) else { continue }
                    switch kv[0] {
                    case "rbytes": entry.rbytes = v
                    case "wbytes": entry.wbytes = v
                    case "rios": entry.rios = v
                    case "wios": entry.wios = v
                    default: break
                    }
                }
                stat.usage.append(entry)
            }
            m.io = stat
        }
        if let files = try? FS.listDirectory(cg.directory) {
            for f in files.sorted() where f.hasPrefix("hugetlb.") && f.hasSuffix(".current") && !f.contains(".rsvd.") {
                let size = String(f.dropFirst(8).dropLast(8))
                var h = HugeTlbStat()
                h.pagesize = size
                h.current = cg.single(f) ?? 0
                let max = cg.single("hugetlb.\(size).max") ?? 0
                h.max = max == UInt64.max ? 0 : max
                m.hugetlb.append(h)
            }
        }
        return m
    }
}

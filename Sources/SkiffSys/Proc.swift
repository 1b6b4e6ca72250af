import Glibc
import CSkiffSys

public enum Proc {
    /// Field 22 of /proc/PID/stat (start time in clock ticks) and the state letter: identifies a
    /// process across pid reuse.
    public static func stat(_ pid: pid_t) -> (state: Character, startTime: UInt64)? {
        guard let s = try? FS.readString("/proc/\(pid)/stat") else { return nil }
        // comm may contain spaces and parentheses: split after the last ')'.
        guard let close = s.lastIndex(of: ")") else { return nil }
        let rest = s[s.index(after: close)...].split(separator: " ")
        guard rest.count > 19, let st = rest[0].first, let start = UInt64(rest[19]) else { return nil }
        return (st, start)
    }

    /// True when `pid` is alive (not a zombie) and is the same process that was started at `startTime`.
    public static func isAlive(_ pid: pid_t, startTime: UInt64?) -> Bool {
        guard pid > 0, let s = stat(pid) else { return false }
        if s.state == "Z" || s.state == "X" { return false }
        if let startTime, startTime != 0, startTime != s.startTime { return false }
        return true
    }

    public static func threadCount() -> Int {
        (try? FS.listDirectory("/proc/self/task").count) ?? 1
    }
}

/// RFC 3339 with nanoseconds in UTC, as Go's time.Time marshals: 2026-11-24T01:02:03.123456789Z.
public func rfc3339Now() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return rfc3339(ts)
}

public func rfc3339(_ ts: timespec) -> String {
    var t = ts.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func pad(_ v: Int32, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    var s = "\(pad(tmv.tm_year + 1900, 4))-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T"
    s += "\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2))"
    var ns = String(ts.tv_nsec)
    ns = String(repeating: "0", count: 9 - ns.count) + ns
    while ns.hasSuffix("0") { ns.removeLast() }
    if !ns.isEmpty { s += "." + ns }
    return s + "Z"
}

public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

public func sleepMillis(_ ms: Int) {
    var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    var rem = timespec()
    while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
}

/// What an idle daemon can give back: the resident pages of its own executable's read-only
/// mappings (text, rodata: clean, refaulted from the page cache when next used). Writable
/// mappings are never touched. Computed once (a static executable's mappings do not move).
public struct IdleTrim {
    public var addrs: [UInt] = []
    public var lens: [UInt] = []

    public init() {
        guard let maps = try? FS.readString("/proc/self/maps") else { return }
        // Our image's mappings are those of the file that holds #dsohandle: matched by device
        // and inode, not by path (run from ExeGuard's overlayfs view, the path in maps and the
        // exe link differ on some kernels).
        let anchor = UInt(bitPattern: #dsohandle)
        var lines: [(lo: UInt, hi: UInt, perms: Substring, file: String)] = []
        for line in maps.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            let range = f.first?.split(separator: "-") ?? []
            guard f.count >= 6, range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16),
                  hi > lo, f[4] != "0" else { continue }
            lines.append((lo, hi, f[1], f[3] + " " + f[4]))
        }
        guard let image = lines.first(where: { $0.lo <= anchor && anchor < $0.hi })?.file else { return }
        for l in lines where l.file == image && !l.perms.contains("w") {
            addrs.append(l.lo)
            lens.append(l.hi - l.lo)
        }
    }
}

import Glibc
import CSkiffSys

public enum Proc {
    /// Field 22 of /proc/PID/stat (start time in clock ticks) and the state letter: identifies a
    /// process across pid reuse.
    public static func stat(_ pid: pid_t) -> (state: Character, startTime: UInt64)? {
        guard let rest = statFields(pid), rest.count > 19, let st = rest[0].utf8.first, let start = parseDecimal(rest[19]) else { return nil }
        return (Character(Unicode.Scalar(st)), start)
    }

    /// The fields of /proc/PID/stat after comm (field 3 on: state, ppid, ...). comm may contain
    /// spaces and parentheses: split after the last ')'.
    static func statFields(_ pid: pid_t) -> [Substring]? { statFields(of: String(pid)) }

    /// Of /proc/`which`/stat: a pid, or "self" (a process whose /proc is not its pid namespace's).
    static func statFields(of which: String) -> [Substring]? {
        guard let s = try? FS.readString("/proc/\(which)/stat"), let close = s.utf8.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        return splitASCII(s[s.utf8.index(after: close)...], UInt8(ascii: " "))
    }

    /// Whether this process is in a user namespace other than the initial one (its uid_map is
    /// not the identity over all 2^32-1 ids).
    public static var inUserNamespace: Bool {
        guard let map = try? FS.readString("/proc/self/uid_map") else { return false }
        let f = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return !(f.count == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
    }

    /// True when `pid` is alive (not a zombie) and is the same process that was started at `startTime`.
    public static func isAlive(_ pid: pid_t, startTime: UInt64?) -> Bool {
        guard pid > 0, let s = stat(pid) else { return false }
        if s.state == "Z" || s.state == "X" { return false }
        if let startTime, startTime != 0, startTime != s.startTime { return false }
        return true
    }

    /// `pid` and every process below it, from the parent pid (field 4) of each /proc/N/stat: what
    /// a container without a cgroup holds (rootless without delegation).
    public static func selfAndDescendants(_ pid: pid_t) -> [pid_t] {
        var parent: [pid_t: pid_t] = [:]
        for name in (try? FS.listDirectory("/proc")) ?? [] {
            guard let p = pid_t(name), let rest = statFields(p) else { continue }
            if rest.count > 1, let pp = pid_t(rest[1]) { parent[p] = pp }
        }
        guard parent[pid] != nil else { return [] }
        var out = [pid], i = 0
        while i < out.count {
            let cur = out[i]
            out += parent.filter { $0.value == cur }.map(\.key).sorted()
            i += 1
        }
        return out
    }

    /// Every process in the pid namespace `pid` is in (read from /proc/N/ns/pid; processes the
    /// caller may not inspect are not seen), `pid` first.
    public static func inPidNamespace(of pid: pid_t) -> [pid_t] {
        func ns(_ p: pid_t) -> String? { FS.readlink("/proc/\(p)/ns/pid") }
        guard let mine = ns(pid) else { return [] }
        let others = ((try? FS.listDirectory("/proc")) ?? []).compactMap { pid_t($0) }.filter { $0 != pid && ns($0) == mine }
        return [pid] + others.sorted()
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
    // The civil date of a day count (Hinnant's days-to-civil), not gmtime_r: glibc's reads
    // /etc/localtime on its first call even for UTC.
    let secs = Int(ts.tv_sec)
    let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
    let daySecs = secs - days * 86400
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ v: Int, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    var s = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
    s += "\(pad(daySecs / 3600, 2)):\(pad(daySecs / 60 % 60, 2)):\(pad(daySecs % 60, 2))"
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
                hi > lo, f[4] != "0"
            else { continue }
            lines.append((lo, hi, f[1], f[3] + " " + f[4]))
        }
        guard let image = lines.first(where: { $0.lo <= anchor && anchor < $0.hi })?.file else { return }
        for l in lines where l.file == image && !l.perms.contains("w") {
            addrs.append(l.lo)
            lens.append(l.hi - l.lo)
        }
    }
}

extension Proc {
    /// Blanks this process's original environment and command line in memory, which is what
    /// /proc/PID/environ and cmdline show. A forked init waits for `start` as a copy of the
    /// runtime; without this, a process of the container allowed to read /proc/1/environ saw the
    /// runtime's whole environment (proxies, tokens) and its paths on the host. The command line
    /// becomes "skiff init", as runc's init is "runc init". Strings already copied by Swift
    /// (CommandLine.arguments) are unaffected; getenv finds nothing afterwards.
    public static func scrubEnvironmentAndCommandLine() {
        guard let (argStart, argEnd, envStart, envEnd) = argumentAndEnvironmentAreas() else { return }
        clearenv()
        if envEnd > envStart, let p = UnsafeMutableRawPointer(bitPattern: envStart) { memset(p, 0, Int(envEnd - envStart)) }
        if argEnd > argStart, let p = UnsafeMutableRawPointer(bitPattern: argStart) {
            let size = Int(argEnd - argStart)
            memset(p, 0, size)
            let title: [UInt8] = Array("skiff\0init\0".utf8)
            if size >= title.count { title.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: title.count) } }
        }
    }

    /// arg_start, arg_end, env_start and env_end: what /proc/PID/cmdline and environ show.
    /// execve lays out argv's strings, envp's, then the file name (AT_EXECFN) end to end, so
    /// main's argv and the auxiliary vector give all four without reading /proc/self/stat
    /// (~2% of a `run`); that file is read when they do not line up.
    static func argumentAndEnvironmentAreas() -> (UInt, UInt, UInt, UInt)? {
        if let areas = areasFromArgv() { return areas }
        // Fields from 3 (state) on; arg_start..env_end are fields 48-51.
        guard let f = statFields(of: "self"), f.count >= 49, let argStart = UInt(f[45]), let argEnd = UInt(f[46]),
            let envStart = UInt(f[47]), let envEnd = UInt(f[48])
        else { return nil }
        return (argStart, argEnd, envStart, envEnd)
    }

    static func areasFromArgv() -> (UInt, UInt, UInt, UInt)? {
        let argc = Int(CommandLine.argc)
        let argv = CommandLine.unsafeArgv
        if argc > 0, let first = argv[0] {
            let argStart = UInt(bitPattern: first)
            var argEnd = argStart
            var aligned = true
            for i in 0..<argc {
                guard let a = argv[i], UInt(bitPattern: a) == argEnd else { aligned = false; break }
                argEnd += UInt(strlen(a)) + 1
            }
            let envEnd = getauxval(UInt(AT_EXECFN))
            // The first original environment string starts where argv's end (envp follows argv).
            if let e = argv[argc + 1], UInt(bitPattern: e) != argEnd { aligned = false }
            if aligned, envEnd >= argEnd, envEnd - argStart <= 1 << 27 { return (argStart, argEnd, argEnd, envEnd) }
        }
        return nil
    }
}

extension Proc {
    /// The syscall number `pid` is parked in while a seccomp agent has not answered its user
    /// notification (SCMP_ACT_NOTIFY), or nil when it is not waiting on one.
    public static func waitingOnSeccompAgent(_ pid: pid_t) -> Int? {
        guard let wchan = try? FS.readString("/proc/\(pid)/wchan"), wchan.hasPrefix("seccomp_do_user_notif") else { return nil }
        return (try? FS.readString("/proc/\(pid)/syscall")).flatMap { $0.split(separator: " ").first.flatMap { Int($0) } } ?? -1
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Watches a container process that runs under a filter with SCMP_ACT_NOTIFY rules while the
/// runtime waits for it: parked on the agent longer than `limit` seconds, it is an error that
/// names the syscall, not a wait without end (in the shim, that would stall every container
/// the shim serves). An agent answers in microseconds; ten seconds is far past a slow one.
public struct SeccompAgentWatch {
    public let pid: pid_t
    public let limit: Double
    var since: Double?

    public init(pid: pid_t, limit: Double = SeccompAgentWatch.defaultLimit) { self.pid = pid; self.limit = limit }

    public static var defaultLimit: Double {
        getenv("SKIFF_SECCOMP_AGENT_TIMEOUT").flatMap { Double(String(cString: $0)) } ?? 10
    }

    /// Call between waits; throws once the process has waited on the agent for `limit` seconds.
    public mutating func check(_ what: String) throws {
        guard let nr = Proc.waitingOnSeccompAgent(pid) else { since = nil; return }
        let now = Proc.monotonicSeconds()
        if since == nil { since = now }
        if now - since! >= limit {
            throw SkiffError.msg(
                "\(what): the container process (pid \(pid)) has waited \(Int(limit)) s for the seccomp agent to answer syscall \(nr)",
                hint:
                    "the agent at linux.seccomp.listenerPath does not answer; SCMP_ACT_NOTIFY on a syscall the runtime itself makes before execve needs an agent that answers it"
            )
        }
    }

    /// Blocks until `fd` is readable, checking the process between polls.
    public mutating func waitReadable(_ fd: Int32, _ what: String) throws {
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&pfd, 1, 200)
            if n > 0 { return }
            if n < 0 && errno != EINTR { throw SkiffError.sys("poll", what) }
            try check(what)
        }
    }
}

extension Proc {
    /// Whether `pid` is pid 1 of its innermost pid namespace (the last NSpid field), nil when
    /// /proc does not say.
    public static func isPidOneOfItsNamespace(_ pid: pid_t) -> Bool? {
        guard let s = try? FS.readString("/proc/\(pid)/status") else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("NSpid:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last == "1"
        }
        return nil
    }
}

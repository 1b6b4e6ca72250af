import Glibc

public enum Signals {
    public static let table: [(String, Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21),
        ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28),
        ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31)
    ]

    /// Parses `KILL`, `SIGKILL`, `sigkill`, `9`, `SIGRTMIN+3`.
    public static func parse(_ s: String) throws -> Int32 {
        if let n = Int32(s) {
            // 0 checks that the container is there, as in runc.
            guard n >= 0 && n <= 64 else { throw SkiffError.msg("invalid signal \(quote(s))", hint: "signals are 0..64") }
            return n
        }
        var name = s.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let hit = table.first(where: { $0.0 == name }) { return hit.1 }
        if name.hasPrefix("RTMIN") || name.hasPrefix("RTMAX") {
            let base: Int32 = name.hasPrefix("RTMIN") ? 34 : 64
            let rest = name.dropFirst(5)
            if rest.isEmpty { return base }
            if let off = Int32(rest), base + off >= 34, base + off <= 64 { return base + off }
        }
        throw SkiffError.msg("unknown signal \(quote(s))", hint: "use a name like KILL, SIGTERM or a number")
    }

    public static func name(_ n: Int32) -> String {
        table.first(where: { $0.1 == n }).map { "SIG" + $0.0 } ?? "signal \(n)"
    }
}

import Glibc
import CCap
import CSkiffSys
import SkiffSys

/// Applies capability sets through libcap, in runc's order: bounding set first (needs
/// CAP_SETPCAP, so before the uid change), then E/P/I after the uid change, then ambient.
public enum Caps {
    /// Highest capability the running kernel knows; names above it are skipped. Read once.
    nonisolated(unsafe) static var cachedLastCap: Int?
    public static func lastCap() -> Int {
        if let c = cachedLastCap { return c }
        var n = 40
        if let s = try? FS.readString("/proc/sys/kernel/cap_last_cap"), let v = Int(s.split(separator: "\n").first ?? "") { n = v }
        cachedLastCap = n
        return n
    }

    /// Drops every capability not in `keep` from the bounding set.
    public static func limitBounding(keep: Set<Int>) throws {
        for cap in 0...lastCap() where !keep.contains(cap) {
            if skiff_prctl(SKIFF_PR_CAPBSET_DROP, UInt(cap), 0, 0, 0) != 0 && errno != EINVAL {
                throw SkiffError.sys("drop capability from bounding set", capName(cap))
            }
        }
    }

    /// Sets effective, permitted and inheritable at once.
    public static func setProcess(effective: [Int], permitted: [Int], inheritable: [Int]) throws {
        guard let caps = cap_init() else { throw SkiffError.sys("cap_init") }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        let last = lastCap()
        func set(_ list: [Int], _ flag: cap_flag_t) throws {
            var values = list.filter { $0 <= last }.map { cap_value_t($0) }
            if values.isEmpty { return }
            if cap_set_flag(caps, flag, Int32(values.count), &values, CAP_SET) != 0 {
                throw SkiffError.sys("cap_set_flag")
            }
        }
        try set(effective, CAP_EFFECTIVE)
        try set(permitted, CAP_PERMITTED)
        try set(inheritable, CAP_INHERITABLE)
        if cap_set_proc(caps) != 0 {
            throw SkiffError.sys("set capabilities", hint: "effective and inheritable capabilities must be in the permitted set")
        }
    }

    public static func setAmbient(_ list: [Int]) throws {
        _ = skiff_prctl(SKIFF_PR_CAP_AMBIENT, UInt(SKIFF_PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
        let last = lastCap()
        for cap in list where cap <= last {
            if skiff_prctl(SKIFF_PR_CAP_AMBIENT, UInt(SKIFF_PR_CAP_AMBIENT_RAISE), UInt(cap), 0, 0) != 0 {
                throw SkiffError.sys(
                    "raise ambient capability", capName(cap),
                    hint: "ambient capabilities must be in the permitted and inheritable sets")
            }
        }
    }

    public static func capName(_ n: Int) -> String {
        guard let p = cap_to_name(cap_value_t(n)) else { return "cap \(n)" }
        defer { cap_free(UnsafeMutableRawPointer(p)) }
        return String(cString: p).uppercased()
    }
}

import Glibc
import CSeccomp
import SkiffSys
import SkiffSpec

/// Builds and loads the container's seccomp filter with libseccomp (linked statically).
public final class SeccompFilter {
    let ctx: scmp_filter_ctx
    public let usesNotify: Bool

    deinit { seccomp_release(ctx) }

    public static let actions: [String] = [
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"
    ]
    public static let operators: [String: scmp_compare] = [
        "SCMP_CMP_NE": SCMP_CMP_NE, "SCMP_CMP_LT": SCMP_CMP_LT, "SCMP_CMP_LE": SCMP_CMP_LE, "SCMP_CMP_EQ": SCMP_CMP_EQ,
        "SCMP_CMP_GE": SCMP_CMP_GE, "SCMP_CMP_GT": SCMP_CMP_GT, "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ
    ]
    public static let archs: [String] = [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"
    ]
    public static let flags: [String] = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]

    /// Action value for a name (the SCMP_ACT_* macros are plain constants).
    public static func action(_ name: String, errnoRet: UInt32?, defaultErrno: UInt32 = UInt32(EPERM)) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0x0000_0000
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errnoRet ?? defaultErrno) & 0xffff)
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((errnoRet ?? defaultErrno) & 0xffff)
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_NOTIFY": return 0x7fc0_0000
        default: throw SkiffError.msg("seccomp: unknown action \(quote(name))", hint: "one of " + actions.joined(separator: ", "))
        }
    }

    public init(_ s: Seccomp) throws {
        let def = try SeccompFilter.action(s.defaultAction, errnoRet: s.defaultErrnoRet)
        guard let c = seccomp_init(def) else { throw SkiffError.msg("seccomp_init failed for default action \(s.defaultAction)") }
        ctx = c
        var notify = s.defaultAction == "SCMP_ACT_NOTIFY"
        for a in s.architectures ?? [] {
            let name = a.hasPrefix("SCMP_ARCH_") ? String(a.dropFirst(10)).lowercased() : a.lowercased()
            let arch = seccomp_arch_resolve_name(name)
            if arch == 0 { throw SkiffError.msg("seccomp: unknown architecture \(quote(a))") }
            let r = seccomp_arch_add(ctx, arch)
            if r != 0 && r != -EEXIST { throw SkiffError("seccomp_arch_add", a, errno: -r) }
        }
        for f in s.flags ?? [] {
            let r: Int32
            switch f {
            case "SECCOMP_FILTER_FLAG_TSYNC": r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)
            case "SECCOMP_FILTER_FLAG_LOG": r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)
            case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1)
            default: throw SkiffError.msg("seccomp: unknown flag \(quote(f))")
            }
            if r != 0 { throw SkiffError("seccomp: set flag", f, errno: -r) }
        }
        // The filter itself must not depend on NO_NEW_PRIVS being set by libseccomp.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        for rule in s.syscalls ?? [] {
            let act = try SeccompFilter.action(rule.action, errnoRet: rule.errnoRet)
            if rule.action == "SCMP_ACT_NOTIFY" { notify = true }
            if act == def { continue }  // libseccomp refuses rules equal to the default action
            var cmps: [scmp_arg_cmp] = []
            for a in rule.args ?? [] {
                guard let op = SeccompFilter.operators[a.op] else { throw SkiffError.msg("seccomp: unknown operator \(quote(a.op))") }
                if a.index > 5 { throw SkiffError.msg("seccomp: argument index \(a.index) is above 5") }
                cmps.append(scmp_arg_cmp(arg: a.index, op: op, datum_a: a.value, datum_b: a.valueTwo ?? 0))
            }
            // libseccomp refuses two comparisons of one argument in a rule; runc then adds each
            // condition as a rule of its own, so they are ORed. So do we.
            let indices = cmps.map(\.arg)
            let groups = Set(indices).count == indices.count ? [cmps] : cmps.map { [$0] }
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR { continue }  // unknown on this arch: skipped, as runc does
                for group in groups {
                    let r = group.withUnsafeBufferPointer { seccomp_rule_add_array(c, act, nr, UInt32($0.count), $0.baseAddress) }
                    if r != 0 { throw SkiffError("seccomp: add rule", name, errno: -r) }
                }
            }
        }
        usesNotify = notify
    }

    public func load() throws {
        let r = seccomp_load(ctx)
        if r != 0 {
            throw SkiffError(
                "seccomp: load filter", nil, errno: -r,
                hint: -r == EACCES ? "without noNewPrivileges the filter needs CAP_SYS_ADMIN" : nil)
        }
    }

    /// The user-notification fd (valid after `load` when the filter uses SCMP_ACT_NOTIFY).
    public func notifyFd() throws -> Int32 {
        let fd = seccomp_notify_fd(ctx)
        if fd < 0 { throw SkiffError("seccomp: notify fd", nil, errno: -fd) }
        return fd
    }

    public static var libraryVersion: String {
        guard let v = seccomp_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.micro)"
    }
}

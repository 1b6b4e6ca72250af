import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec

/// The cgroup v2 device controller is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE). This builds
/// it from linux.resources.devices (OCI order: a later rule overrides an earlier one, so rules are
/// emitted last-first and the first match returns), appends runc's default allowed devices, and
/// attaches it to the container's cgroup.
public struct DeviceRuleSpec: Equatable, Sendable {
    public var allow: Bool
    public var type: Character  // a, c, b
    public var major: Int64  // -1 = any
    public var minor: Int64
    public var access: String
}

public enum DeviceFilter {
    /// runc's AllowedDevices: mknod of any char/block node, and the usual safe nodes (with the
    /// path each default belongs to: a node linux.devices redefines loses its default rule).
    public static let defaultAllowed: [(path: String?, rule: DeviceRuleSpec)] = [
        (nil, .init(allow: true, type: "c", major: -1, minor: -1, access: "m")),
        (nil, .init(allow: true, type: "b", major: -1, minor: -1, access: "m")),
        ("/dev/null", .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm")),
        ("/dev/random", .init(allow: true, type: "c", major: 1, minor: 8, access: "rwm")),
        ("/dev/full", .init(allow: true, type: "c", major: 1, minor: 7, access: "rwm")),
        ("/dev/tty", .init(allow: true, type: "c", major: 5, minor: 0, access: "rwm")),
        ("/dev/zero", .init(allow: true, type: "c", major: 1, minor: 5, access: "rwm")),
        ("/dev/urandom", .init(allow: true, type: "c", major: 1, minor: 9, access: "rwm")),
        (nil, .init(allow: true, type: "c", major: 5, minor: 1, access: "rwm")),
        (nil, .init(allow: true, type: "c", major: 136, minor: -1, access: "rwm")),
        (nil, .init(allow: true, type: "c", major: 5, minor: 2, access: "rwm"))
    ]

    /// Rules in evaluation order (a later rule overrides an earlier one): the config's
    /// linux.resources.devices, then the defaults. Creating a node (linux.devices) grants no
    /// access to it, as in runc: only linux.resources.devices does. Unknown access letters are
    /// ignored with a warning, as runc tolerates them.
    public static func rules(resources: [DeviceRule], devices: [Device], warn: (String) -> Void = { _ in }) throws -> [DeviceRuleSpec] {
        var out: [DeviceRuleSpec] = []
        for r in resources {
            let t = r.type ?? "a"
            guard t == "a" || t == "c" || t == "b", t.count == 1 else { throw SkiffError.msg("resources.devices: unknown type \(quote(t))") }
            var access = r.access ?? "rwm"
            if access.isEmpty { access = "rwm" }
            let unknown = access.filter { !"rwm".contains($0) }
            if !unknown.isEmpty {
                warn("linux.resources.devices: access \(quote(access)): ignoring unknown letters \(quote(unknown))")
                access = access.filter { "rwm".contains($0) }
                if access.isEmpty { continue }
            }
            // -1 (or absent) is any; anything else must be a device number, not a value the
            // program would truncate to 32 bits (2^32+1 would become major 1: /dev/mem).
            for (name, v) in [("major", r.major), ("minor", r.minor)] {
                if let v, v != -1, v < 0 || v > Int64(UInt32.max) {
                    throw SkiffError.msg("resources.devices: \(name) \(v) is not a device number (0 to \(UInt32.max), or -1 for any)")
                }
            }
            out.append(.init(allow: r.allow, type: t.first!, major: r.major ?? -1, minor: r.minor ?? -1, access: access))
        }
        let redefined = Set(devices.map(\.path))
        out += defaultAllowed.filter { $0.path.map { !redefined.contains($0) } ?? true }.map(\.rule)
        return out
    }

    // eBPF encoding helpers: (code, dst, src, off, imm).
    static func insn(_ code: UInt8, _ dst: UInt8, _ src: UInt8, _ off: Int16, _ imm: Int32) -> UInt64 {
        UInt64(code) | (UInt64(dst & 0xf) << 8) | (UInt64(src & 0xf) << 12) | (UInt64(UInt16(bitPattern: off)) << 16)
            | (UInt64(UInt32(bitPattern: imm)) << 32)
    }

    static func accessMask(_ access: String) -> UInt32 {
        var mask: UInt32 = 0
        if access.contains("m") { mask |= 1 }
        if access.contains("r") { mask |= 2 }
        if access.contains("w") { mask |= 4 }
        return mask
    }

    /// Instructions with forward jumps to labels, resolved once the program is complete.
    struct Assembler {
        enum Item {
            case insn(UInt64)
            case jump(code: UInt8, reg: UInt8, imm: Int32, label: Int)
        }
        var items: [Item] = []
        var labels: [Int?] = []

        mutating func label() -> Int { labels.append(nil); return labels.count - 1 }
        mutating func bind(_ l: Int) { labels[l] = items.count }
        mutating func emit(_ i: UInt64) { items.append(.insn(i)) }
        mutating func jump(_ code: UInt8, _ reg: UInt8, _ imm: Int32, to l: Int) { items.append(.jump(code: code, reg: reg, imm: imm, label: l)) }

        func assemble() -> [UInt64] {
            items.enumerated().map { i, item in
                switch item {
                case .insn(let x): return x
                case .jump(let code, let reg, let imm, let l): return insn(code, reg, 0, Int16(labels[l]! - i - 1), imm)
                }
            }
        }
    }

    /// The program: r2 = dev type, r3 = access, r4 = major, r5 = minor. Rules are tried last
    /// first and the first match decides. A run of rules with the same verdict, type and access
    /// is one group, tested once for access and type and then by major and minor: which of its
    /// rules matches makes no difference. runc's defaults are such a run, and fewer branches is
    /// less for the verifier to walk on every create (about half of the load's cost).
    public static func program(_ rules: [DeviceRuleSpec]) -> [UInt64] {
        let ldxw: UInt8 = 0x61, and32: UInt8 = 0x54, rsh32: UInt8 = 0x74, mov32x: UInt8 = 0xbc, jne32: UInt8 = 0x56,
            jeq32: UInt8 = 0x16, ja: UInt8 = 0x05, mov64k: UInt8 = 0xb7, exit: UInt8 = 0x95
        var a = Assembler()
        for i in [
            insn(ldxw, 2, 1, 0, 0), insn(and32, 2, 0, 0, 0xffff),
            insn(ldxw, 3, 1, 0, 0), insn(rsh32, 3, 0, 0, 16),
            insn(ldxw, 4, 1, 4, 0), insn(ldxw, 5, 1, 8, 0)
        ] { a.emit(i) }
        var groups: [[DeviceRuleSpec]] = []
        for r in rules.reversed() {
            // At most 1000 rules a group, so that no jump outgrows its 16-bit offset.
            if let group = groups.last, let g = group.first, group.count < 1000, g.allow == r.allow, g.type == r.type,
                accessMask(g.access) == accessMask(r.access)
            {
                groups[groups.count - 1].append(r)
            } else {
                groups.append([r])
            }
        }
        for g in groups {
            let next = a.label(), action = a.label()
            let mask = accessMask(g[0].access)
            if mask != 7 {
                // (requested access & ~allowed) != 0 → not this group
                a.emit(insn(mov32x, 1, 3, 0, 0))
                a.emit(insn(and32, 1, 0, 0, Int32(bitPattern: ~mask)))
                a.jump(jne32, 1, 0, to: next)
            }
            if g[0].type != "a" { a.jump(jne32, 2, g[0].type == "b" ? 1 : 2, to: next) }
            let matchesAll = g.contains { $0.major < 0 && $0.minor < 0 }
            if !matchesAll && g.allSatisfy({ $0.major == g[0].major && $0.minor == g[0].minor }) {
                // One device (or one major): straight checks, as for a lone rule.
                let (major, minor) = (g[0].major, g[0].minor)
                if major >= 0 { a.jump(jne32, 4, Int32(truncatingIfNeeded: major), to: next) }
                if minor >= 0 { a.jump(jne32, 5, Int32(truncatingIfNeeded: minor), to: next) }
            } else if !matchesAll {
                for minor in Set(g.filter { $0.major < 0 }.map(\.minor)).sorted() {
                    a.jump(jeq32, 5, Int32(truncatingIfNeeded: minor), to: action)
                }
                let byMajor = Dictionary(grouping: g.filter { $0.major >= 0 }, by: \.major)
                for major in byMajor.keys.sorted() {
                    let rs = byMajor[major]!
                    if rs.contains(where: { $0.minor < 0 }) {
                        a.jump(jeq32, 4, Int32(truncatingIfNeeded: major), to: action)
                        continue
                    }
                    let otherMajor = a.label()
                    a.jump(jne32, 4, Int32(truncatingIfNeeded: major), to: otherMajor)
                    for minor in Set(rs.map(\.minor)).sorted() { a.jump(jeq32, 5, Int32(truncatingIfNeeded: minor), to: action) }
                    a.bind(otherMajor)
                }
                a.jump(ja, 0, 0, to: next)
            }
            a.bind(action)
            a.emit(insn(mov64k, 0, 0, 0, g[0].allow ? 1 : 0))
            a.emit(insn(exit, 0, 0, 0, 0))
            // A group that matches everything ends the program: the verifier rejects dead code.
            if matchesAll && mask == 7 && g[0].type == "a" { return a.assemble() }
            a.bind(next)
        }
        a.emit(insn(mov64k, 0, 0, 0, 0))  // nothing matched: deny
        a.emit(insn(exit, 0, 0, 0, 0))
        return a.assemble()
    }

    /// Loads the program and attaches it to the cgroup directory.
    public static func attach(_ rules: [DeviceRuleSpec], cgroupDir: String) throws {
        let prog = program(rules)
        // Without a log first: the verifier formatting its state at every instruction was half
        // of the load's cost (~0.4 ms of a `run`). The log is asked for only to explain a refusal.
        var fd = prog.withUnsafeBytes { p in skiff_bpf_load_device_prog(p.baseAddress, UInt32(prog.count), nil, 0) }
        var log = [CChar]()
        if fd < 0 && (errno == EINVAL || errno == EACCES) {
            log = [CChar](repeating: 0, count: 65536)
            fd = prog.withUnsafeBytes { p in skiff_bpf_load_device_prog(p.baseAddress, UInt32(prog.count), &log, UInt32(log.count)) }
        }
        if fd < 0 {
            let e = errno
            let text = log.isEmpty ? "" : String(cString: log).split(separator: "\n").suffix(3).joined(separator: "; ")
            throw SkiffError(
                "load device eBPF program", cgroupDir, errno: e, detail: text.isEmpty ? nil : text,
                hint: e == EPERM ? "needs CAP_BPF/CAP_SYS_ADMIN" : nil)
        }
        defer { close(fd) }
        let cg = try FS.open(cgroupDir, O_RDONLY | O_DIRECTORY)
        defer { close(cg) }
        if skiff_bpf_attach_device_prog(cg, fd) != 0 { throw SkiffError.sys("attach device eBPF program", cgroupDir) }
    }
}

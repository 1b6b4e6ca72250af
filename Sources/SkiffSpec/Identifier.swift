import SkiffSys

/// containerd's identifier rule (`identifiers.Validate`), for names that become path components:
/// namespaces, container and exec ids. `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 bytes, so
/// `..`, `/` and empty names can never reach a path.
public enum Identifier {
    public static let maxLength = 76

    public static func isValid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= maxLength else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) }
        func sep(_ c: UInt8) -> Bool { c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") }
        guard alnum(b.first!), alnum(b.last!) else { return false }
        for (i, c) in b.enumerated() {
            if alnum(c) { continue }
            guard sep(c), i > 0, alnum(b[i - 1]) else { return false }
        }
        return true
    }

    /// Throws `invalid <what> "<s>": ...` when `s` breaks the rule.
    public static func validate(_ s: String, what: String) throws {
        if !isValid(s) {
            throw SkiffError("invalid \(what)", s, detail: "must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most \(maxLength) characters")
        }
    }
}

/// Escapes a fixed number of digits long after a marker byte, decoded: mountinfo's `\NNN` (octal;
/// the kernel writes space, tab, newline and backslash so) and URIs' `%XX` (hex). A marker without
/// valid digits stays as it is.
public func decodeEscapes(_ s: String, marker: UInt8, digits: Int, radix: Int) -> String {
    guard s.utf8.contains(marker) else { return s }
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
        if b[i] == marker, i + digits < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + digits)], as: UTF8.self), radix: radix) {
            out.append(v)
            i += digits + 1
        } else {
            out.append(b[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// A mount point or root field of /proc/self/mountinfo as the path it names.
public func unescapeMountinfo(_ s: String) -> String { decodeEscapes(s, marker: UInt8(ascii: "\\"), digits: 3, radix: 8) }

/// The pieces of `s` between `separator` bytes, empty ones dropped (as `split` does). Split on
/// UTF-8 bytes: String's own split compares Characters, whose grapheme breaking made parsing
/// /proc's ASCII-separated files a visible share of a command's CPU.
public func splitASCII(_ s: Substring, _ separator: UInt8) -> [Substring] {
    var out: [Substring] = []
    let u = s.utf8
    var start = u.startIndex
    var i = start
    while i != u.endIndex {
        if u[i] == separator {
            if start != i { out.append(s[start..<i]) }
            start = u.index(after: i)
        }
        u.formIndex(after: &i)
    }
    if start != u.endIndex { out.append(s[start..<u.endIndex]) }
    return out
}

public func splitASCII(_ s: String, _ separator: UInt8) -> [Substring] { splitASCII(s[...], separator) }

/// A decimal number made of ASCII digits only, read from the bytes: `UInt64(substring)` is
/// generic over StringProtocol and has its witnesses looked up at run time.
public func parseDecimal(_ s: Substring) -> UInt64? {
    var v: UInt64 = 0
    if s.utf8.isEmpty { return nil }
    for b in s.utf8 {
        guard b >= 0x30 && b <= 0x39 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
        if o1 || o2 { return nil }
        v = a
    }
    return v
}

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

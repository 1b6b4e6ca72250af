import Glibc

/// rtnetlink, for the two things a runtime does to links: bring `lo` up in a new network
/// namespace, and move a host interface into (and out of) a container's (linux.netDevices).
///
/// The design names libmnl for this; Debian 12 ships libmnl only as a shared library (no
/// libmnl.a), which the fully static runtime cannot link, so the few messages are encoded here
/// the way libmnl lays them out: nlmsghdr, ifinfomsg, then 4-byte aligned attributes.
public struct Netlink {
    let fd: Int32
    var seq: UInt32 = 1

    static let RTM_NEWLINK: UInt16 = 16
    static let NLM_F_REQUEST: UInt16 = 0x1, NLM_F_ACK: UInt16 = 0x4
    static let NLMSG_ERROR: UInt16 = 2
    static let IFLA_IFNAME: UInt16 = 3, IFLA_NET_NS_FD: UInt16 = 28
    static let IFF_UP: UInt32 = 0x1

    public init() throws {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        if fd < 0 { throw SkiffError.sys("socket", "netlink route") }
    }

    public func close() { Glibc.close(fd) }

    /// The interface's index in our network namespace.
    public static func index(of name: String) throws -> Int32 {
        let i = if_nametoindex(name)
        if i == 0 { throw SkiffError.sys("find network interface", name) }
        return Int32(i)
    }

    /// ip link set NAME up.
    public mutating func setUp(_ name: String) throws {
        try request(index: try Netlink.index(of: name), flags: Netlink.IFF_UP, change: Netlink.IFF_UP, attrs: [], what: "set \(name) up")
    }

    /// ip link set NAME netns <netnsFd> [name NEWNAME].
    public mutating func move(_ name: String, toNamespace netns: Int32, newName: String?) throws {
        var attrs: [(UInt16, [UInt8])] = [(Netlink.IFLA_NET_NS_FD, withUnsafeBytes(of: UInt32(bitPattern: netns).littleEndian, Array.init))]
        if let newName, newName != name { attrs.append((Netlink.IFLA_IFNAME, Array(newName.utf8) + [0])) }
        try request(
            index: try Netlink.index(of: name), flags: 0, change: 0, attrs: attrs,
            what: "move \(name) to the container's network namespace" + (newName.map { " as \($0)" } ?? ""))
    }

    mutating func request(index: Int32, flags: UInt32, change: UInt32, attrs: [(UInt16, [UInt8])], what: String) throws {
        var body: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { body.append(contentsOf: $0) } }
        // struct ifinfomsg { u8 family, pad; u16 type; s32 index; u32 flags, change }
        put(UInt8(AF_UNSPEC)); put(UInt8(0)); put(UInt16(0)); put(index); put(flags); put(change)
        for (type, value) in attrs {
            put(UInt16(4 + value.count)); put(type)
            body += value
            while body.count % 4 != 0 { body.append(0) }
        }
        var msg: [UInt8] = []
        func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { msg.append(contentsOf: $0) } }
        func put16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { msg.append(contentsOf: $0) } }
        seq += 1
        put32(UInt32(16 + body.count)); put16(Netlink.RTM_NEWLINK); put16(Netlink.NLM_F_REQUEST | Netlink.NLM_F_ACK)
        put32(seq); put32(0)
        msg += body
        let sent = msg.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        if sent < 0 { throw SkiffError.sys("netlink", what) }
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR { continue }; throw SkiffError.sys("netlink", what) }
            var off = 0
            while off + 16 <= n {
                let len = Int(buf[off..<off + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                let type = buf[off + 4..<off + 6].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
                let s = buf[off + 8..<off + 12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
                if type == Netlink.NLMSG_ERROR && s == seq && off + 20 <= n {
                    let code = buf[off + 16..<off + 20].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                    if code == 0 { return }
                    throw SkiffError("netlink", what, errno: -code)
                }
                if len < 16 { break }
                off += (len + 3) & ~3
            }
        }
    }
}

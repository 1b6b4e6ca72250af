import SkiffSys

/// mount(8)-style option strings mapped to mount(2) flags, propagation and data, as runc does:
/// a string that is not a known flag is passed to the filesystem as data (`mode=755`, `size=64k`).
public struct MountOptions: Equatable, Sendable {
    public static let RDONLY: UInt = 1, NOSUID: UInt = 2, NODEV: UInt = 4, NOEXEC: UInt = 8, SYNCHRONOUS: UInt = 16,
        REMOUNT: UInt = 32, MANDLOCK: UInt = 64, DIRSYNC: UInt = 128, NOSYMFOLLOW: UInt = 256, NOATIME: UInt = 1024,
        NODIRATIME: UInt = 2048, BIND: UInt = 4096, REC: UInt = 16384, SILENT: UInt = 32768,
        UNBINDABLE: UInt = 1 << 17, PRIVATE: UInt = 1 << 18, SLAVE: UInt = 1 << 19, SHARED: UInt = 1 << 20,
        RELATIME: UInt = 1 << 21, STRICTATIME: UInt = 1 << 24, LAZYTIME: UInt = 1 << 25

    /// Flags to set.
    public var flags: UInt = 0
    /// Propagation changes, applied after the mount, in order.
    public var propagation: [UInt] = []
    /// Filesystem-specific data, comma-joined for mount(2).
    public var data: [String] = []
    /// Recursive attributes (`rro`, `rnosuid`, ...), applied with mount_setattr.
    public var recursiveSet: UInt64 = 0
    public var recursiveClear: UInt64 = 0
    /// `idmap`/`ridmap` asked for an id-mapped mount.
    public var idmap = false

    public var isBind: Bool { flags & Self.BIND != 0 }
    public var isRecursiveBind: Bool { isBind && flags & Self.REC != 0 }
    public var dataString: String? { data.isEmpty ? nil : data.joined(separator: ",") }

    public init() {}

    /// (set, clear) pairs for the plain flags.
    static let flagTable: [String: (set: Bool, flag: UInt)] = [
        "ro": (true, RDONLY), "rw": (false, RDONLY), "nosuid": (true, NOSUID), "suid": (false, NOSUID),
        "nodev": (true, NODEV), "dev": (false, NODEV), "noexec": (true, NOEXEC), "exec": (false, NOEXEC),
        "sync": (true, SYNCHRONOUS), "async": (false, SYNCHRONOUS), "dirsync": (true, DIRSYNC),
        "remount": (true, REMOUNT), "mand": (true, MANDLOCK), "nomand": (false, MANDLOCK),
        "noatime": (true, NOATIME), "atime": (false, NOATIME), "nodiratime": (true, NODIRATIME),
        "diratime": (false, NODIRATIME), "relatime": (true, RELATIME), "norelatime": (false, RELATIME),
        "strictatime": (true, STRICTATIME), "nostrictatime": (false, STRICTATIME),
        "lazytime": (true, LAZYTIME), "nolazytime": (false, LAZYTIME), "bind": (true, BIND),
        "rbind": (true, BIND | REC), "nosymfollow": (true, NOSYMFOLLOW), "symfollow": (false, NOSYMFOLLOW),
        "silent": (true, SILENT), "loud": (false, SILENT), "defaults": (false, 0)
    ]

    static let propagationTable: [String: UInt] = [
        "private": PRIVATE, "rprivate": PRIVATE | REC, "shared": SHARED, "rshared": SHARED | REC,
        "slave": SLAVE, "rslave": SLAVE | REC, "unbindable": UNBINDABLE, "runbindable": UNBINDABLE | REC
    ]

    // MOUNT_ATTR_* for mount_setattr(2).
    static let recursiveTable: [String: (set: Bool, attr: UInt64)] = [
        "rro": (true, 0x1), "rrw": (false, 0x1), "rnosuid": (true, 0x2), "rsuid": (false, 0x2),
        "rnodev": (true, 0x4), "rdev": (false, 0x4), "rnoexec": (true, 0x8), "rexec": (false, 0x8),
        "rnodiratime": (true, 0x80), "rdiratime": (false, 0x80), "rnoatime": (true, 0x10),
        "rstrictatime": (true, 0x20), "rrelatime": (true, 0x00), "rnosymfollow": (true, 0x200000),
        "rsymfollow": (false, 0x200000)
    ]

    static let atimeOptions: Set<String> = ["rnoatime", "rstrictatime", "rrelatime"]

    public static func isKnownFlag(_ o: String) -> Bool {
        flagTable[o] != nil || propagationTable[o] != nil || recursiveTable[o] != nil || o == "idmap" || o == "ridmap"
    }

    public static var knownNames: [String] {
        (Array(flagTable.keys) + Array(propagationTable.keys) + Array(recursiveTable.keys) + ["idmap", "ridmap", "tmpcopyup"]).sorted()
    }

    public static func parse(_ options: [String], destination: String = "") throws -> MountOptions {
        var m = MountOptions()
        for o in options {
            if let f = flagTable[o] {
                if f.set { m.flags |= f.flag } else { m.flags &= ~f.flag }
            } else if let p = propagationTable[o] {
                m.propagation.append(p)
            } else if let r = recursiveTable[o] {
                if atimeOptions.contains(o) {
                    // One field (MOUNT_ATTR__ATIME): cleared, then set to the mode asked for.
                    m.recursiveSet = (m.recursiveSet & ~0x70) | r.attr
                    m.recursiveClear |= 0x70
                } else if r.set {
                    m.recursiveSet |= r.attr; m.recursiveClear &= ~r.attr
                } else {
                    m.recursiveClear |= r.attr; m.recursiveSet &= ~r.attr
                }
            } else if o == "idmap" || o == "ridmap" {
                m.idmap = true
            } else if o == "tmpcopyup" {
                continue  // runc extension; not supported, ignored like crun without the feature
            } else if o.isEmpty {
                throw SkiffError.msg("config: mount \(quote(destination)): empty mount option")
            } else {
                m.data.append(o)
            }
        }
        return m
    }
}

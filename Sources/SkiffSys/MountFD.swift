import Glibc
import CSkiffSys

/// The fd-based mount API (open_tree, move_mount, mount_setattr, fsopen/fsmount): a mount is
/// built as a detached tree, given its attributes there, and attached onto a target descriptor
/// that was resolved once. Nothing is looked up by path a second time, so a concurrent writer who
/// swaps a directory for a symlink cannot redirect it. Needs Linux 5.12 (mount_setattr).
public enum MountFD {
    static let kernelHint = "skiff mounts through the fd-based mount API, which needs Linux 5.12 or later"

    static func failure(_ op: String, _ what: String) -> SkiffError {
        let e = errno
        return SkiffError(op, what, errno: e, hint: e == ENOSYS ? kernelHint : nil)
    }

    /// A detached copy of the mount at `path` (relative to `dirfd`; "" with `dirfd` itself),
    /// with its submounts when `recursive` (rbind).
    public static func cloneTree(_ dirfd: Int32, _ path: String = "", recursive: Bool, what: String) throws -> Int32 {
        var flags = SKIFF_OPEN_TREE_CLONE | (recursive ? SKIFF_AT_RECURSIVE : 0)
        if path.isEmpty { flags |= SKIFF_AT_EMPTY_PATH }
        let fd = retryEINTR { skiff_open_tree(dirfd, path, flags) }
        if fd < 0 { throw failure("bind", what) }
        return fd
    }

    /// Attaches the detached mount `mount` on top of the object `target` refers to.
    public static func attach(_ mount: Int32, to target: Int32, what: String) throws {
        if skiff_move_mount(mount, "", target, "", SKIFF_MOVE_MOUNT_F_EMPTY_PATH | SKIFF_MOVE_MOUNT_T_EMPTY_PATH) != 0 {
            throw failure("mount", what)
        }
    }

    /// mount_setattr(2) on the mount `fd` is the root of (and its submounts when `recursive`).
    public static func setAttributes(
        _ fd: Int32, set: UInt64, clear: UInt64, propagation: UInt64 = 0,
        recursive: Bool, what: String
    ) throws {
        if set == 0 && clear == 0 && propagation == 0 { return }
        let flags = SKIFF_AT_EMPTY_PATH | (recursive ? SKIFF_AT_RECURSIVE : 0)
        if skiff_mount_setattr(fd, "", flags, set, clear, propagation, -1) != 0 {
            var e = failure("set mount attributes of", what)
            if e.errno == EPERM { e.hint = "a flag locked by the source mount (ro, nosuid, nodev, noexec) cannot be cleared in a user namespace" }
            throw e
        }
    }

    /// A new filesystem instance, configured like mount(2) would be with `options` as its data
    /// (`key=value` or `flag`), returned as a detached mount with the mount attributes `attrs`.
    public static func newFilesystem(
        type: String, source: String?, options: [String], superblockFlags: [String],
        attrs: UInt64, what: String
    ) throws -> Int32 {
        let fs = skiff_fsopen(type)
        if fs < 0 { throw failure("fsopen \(type) for", what) }
        defer { close(fs) }
        func check(_ r: Int32, _ param: String) throws {
            guard r != 0 else { return }
            var e = failure("mount \(type) on", what)
            e.detail = param.isEmpty ? nil : "option \(quote(param))"
            if let log = kernelLog(fs) { e.detail = (e.detail.map { $0 + ": " } ?? "") + log }
            throw e
        }
        if let source, !source.isEmpty { try check(skiff_fsconfig_string(fs, "source", source), "source=\(source)") }
        for o in options {
            if let eq = o.firstIndex(of: "=") {
                try check(skiff_fsconfig_string(fs, String(o[..<eq]), String(o[o.index(after: eq)...])), o)
            } else {
                try check(skiff_fsconfig_flag(fs, o), o)
            }
        }
        for f in superblockFlags { try check(skiff_fsconfig_flag(fs, f), f) }
        try check(skiff_fsconfig_create(fs), "")
        let mnt = skiff_fsmount(fs, UInt32(truncatingIfNeeded: attrs))
        if mnt < 0 {
            var e = failure("mount \(type) on", what)
            if let log = kernelLog(fs) { e.detail = log }
            throw e
        }
        return mnt
    }

    /// What the filesystem said about a failed configuration (the fs context's message log).
    static func kernelLog(_ fs: Int32) -> String? {
        var out: [String] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        let flags = skiff_fcntl_getfl(fs)
        _ = skiff_fcntl_setfl(fs, flags | O_NONBLOCK)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fs, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var line = String(decoding: buf[0..<n], as: UTF8.self).trimmingTrailingWhitespace()
            if line.hasPrefix("e ") || line.hasPrefix("w ") || line.hasPrefix("i ") { line.removeFirst(2) }
            out.append(line)
        }
        return out.isEmpty ? nil : out.joined(separator: "; ")
    }

    /// mount(2) flags as mount attributes (MOUNT_ATTR_*), for fsmount and mount_setattr.
    public static func attributes(fromFlags f: UInt) -> UInt64 {
        var a: UInt64 = 0
        if f & UInt(SKIFF_MS_RDONLY) != 0 { a |= UInt64(SKIFF_MOUNT_ATTR_RDONLY) }
        if f & UInt(SKIFF_MS_NOSUID) != 0 { a |= UInt64(SKIFF_MOUNT_ATTR_NOSUID) }
        if f & UInt(SKIFF_MS_NODEV) != 0 { a |= UInt64(SKIFF_MOUNT_ATTR_NODEV) }
        if f & UInt(SKIFF_MS_NOEXEC) != 0 { a |= SKIFF_MOUNT_ATTR_NOEXEC }
        if f & UInt(SKIFF_MS_NODIRATIME) != 0 { a |= SKIFF_MOUNT_ATTR_NODIRATIME }
        if f & UInt(SKIFF_MS_NOSYMFOLLOW) != 0 { a |= SKIFF_MOUNT_ATTR_NOSYMFOLLOW }
        if f & UInt(SKIFF_MS_NOATIME) != 0 {
            a |= SKIFF_MOUNT_ATTR_NOATIME
        } else if f & UInt(SKIFF_MS_STRICTATIME) != 0 {
            a |= SKIFF_MOUNT_ATTR_STRICTATIME
        }
        return a
    }

    /// Whether the flags name an access-time mode (which mount_setattr sets as one field).
    public static func setsAtime(_ f: UInt) -> Bool {
        f & (UInt(SKIFF_MS_NOATIME) | UInt(SKIFF_MS_STRICTATIME) | UInt(SKIFF_MS_RELATIME)) != 0
    }

    /// Superblock flags of mount(2) that a new filesystem takes as fsconfig flags.
    public static func superblockFlags(_ f: UInt) -> [String] {
        var out: [String] = []
        if f & UInt(SKIFF_MS_RDONLY) != 0 { out.append("ro") }
        if f & UInt(SKIFF_MS_SYNCHRONOUS) != 0 { out.append("sync") }
        if f & UInt(SKIFF_MS_DIRSYNC) != 0 { out.append("dirsync") }
        if f & UInt(SKIFF_MS_LAZYTIME) != 0 { out.append("lazytime") }
        if f & UInt(SKIFF_MS_MANDLOCK) != 0 { out.append("mand") }
        return out
    }

    /// Propagation flags of mount(2) as mount_setattr's propagation value, and whether recursive.
    public static func propagation(_ p: UInt) -> (UInt64, Bool) {
        (UInt64(p & ~UInt(SKIFF_MS_REC)), p & UInt(SKIFF_MS_REC) != 0)
    }
}

import Glibc
import SkiffSys

/// The kernel calls that make a container's mounts and device nodes, behind one seam (youki's
/// syscall/test.rs is the model): `Rootfs` goes through `calls`, the kernel's by default, and a
/// test records them without root to check order, targets, masking and flags. Path resolution
/// (`InRoot`, openat2) stays real: it needs no privilege and is what the seam must not fake.
public protocol MountCalls {
    /// open_tree(OPEN_TREE_CLONE): a detached copy of the mount at `path` below `dirfd`.
    func cloneTree(_ dirfd: Int32, _ path: String, recursive: Bool, what: String) throws -> Int32
    /// fsopen/fsconfig/fsmount: a new filesystem as a detached mount.
    func newFilesystem(
        type: String, source: String?, options: [String], superblockFlags: [String], attrs: UInt64,
        what: String
    ) throws -> Int32
    /// mount_setattr on the mount `fd` is the root of.
    func setAttributes(_ fd: Int32, set: UInt64, clear: UInt64, propagation: UInt64, recursive: Bool, what: String) throws
    /// move_mount of a detached mount onto a resolved target.
    func attach(_ mount: Int32, to target: Int32, what: String) throws
    /// mount(2) by path: propagation changes and the no-pivot move.
    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) throws
    /// mknodat(2): 0, or -1 with errno set.
    func mknodat(_ dirfd: Int32, _ name: String, _ mode: mode_t, _ dev: dev_t) -> Int32
}

extension MountCalls {
    func cloneTree(_ dirfd: Int32, recursive: Bool, what: String) throws -> Int32 {
        try cloneTree(dirfd, "", recursive: recursive, what: what)
    }

    func setAttributes(_ fd: Int32, set: UInt64, clear: UInt64, recursive: Bool, what: String) throws {
        try setAttributes(fd, set: set, clear: clear, propagation: 0, recursive: recursive, what: what)
    }
}

/// The real calls.
public struct KernelMounts: MountCalls {
    public init() {}

    public func cloneTree(_ dirfd: Int32, _ path: String, recursive: Bool, what: String) throws -> Int32 {
        try MountFD.cloneTree(dirfd, path, recursive: recursive, what: what)
    }

    public func newFilesystem(
        type: String, source: String?, options: [String], superblockFlags: [String], attrs: UInt64,
        what: String
    ) throws -> Int32 {
        try MountFD.newFilesystem(type: type, source: source, options: options, superblockFlags: superblockFlags, attrs: attrs, what: what)
    }

    public func setAttributes(_ fd: Int32, set: UInt64, clear: UInt64, propagation: UInt64, recursive: Bool, what: String) throws {
        try MountFD.setAttributes(fd, set: set, clear: clear, propagation: propagation, recursive: recursive, what: what)
    }

    public func attach(_ mount: Int32, to target: Int32, what: String) throws {
        try MountFD.attach(mount, to: target, what: what)
    }

    public func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) throws {
        try Sys.mount(source, target, type, flags, data)
    }

    public func mknodat(_ dirfd: Int32, _ name: String, _ mode: mode_t, _ dev: dev_t) -> Int32 {
        Glibc.mknodat(dirfd, name, mode, dev)
    }
}

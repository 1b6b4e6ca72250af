import Glibc
import SkiffSys
import SkiffSpec
import SkiffRootfs
import SkiffWire

/// The rootfs mounts of CreateTaskRequest (a snapshotter's overlay or bind), mounted by the shim
/// onto `<bundle>/rootfs` in order, with containerd's option parsing: mount(2) flags by name,
/// everything else as filesystem data.
enum RootfsMounts {
    static func mount(_ mounts: [SkiffWire.Mount], on target: String) throws {
        var done = 0
        do {
            for m in mounts {
                let opts = try MountOptions.parse(m.options, destination: target)
                if opts.data.contains("loop") {
                    throw SkiffError.msg(
                        "rootfs mount \(quote(m.source)): loop mounts are not supported", hint: "use a snapshotter that gives overlay or bind mounts")
                }
                // A mount below the rootfs (containerd's Mount.target) is resolved inside it, once:
                // "../.." or the image's own symlink (etc -> /etc, once the overlay is up) would
                // put a mount of any type and options on the host.
                var root: Int32 = -1
                var held: Int32 = -1
                defer { for fd in [root, held] where fd >= 0 { close(fd) } }
                func resolve() throws -> Int32 {
                    let fd = InRoot.open(root, m.target)
                    if fd < 0 { throw SkiffError("rootfs mount target", m.target, errno: errno, hint: "it must exist inside the rootfs") }
                    return fd
                }
                if !m.target.isEmpty {
                    if m.target.split(separator: "/").contains("..") {
                        throw SkiffError.msg("rootfs mount target \(quote(m.target)): leaves the rootfs (..)")
                    }
                    root = try FS.open(target, InRoot.oPath | O_DIRECTORY)
                    held = try resolve()
                    // A target that is the rootfs itself ("/", ".", a link to "/") would stack the
                    // mount on the place every later resolve starts from, and the remount below
                    // would reach the mount beneath instead.
                    var a = stat(), b = stat()
                    if fstat(root, &a) == 0 && fstat(held, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino {
                        throw SkiffError.msg("rootfs mount target \(quote(m.target)): is the rootfs itself", hint: "give a directory below it")
                    }
                }
                let type = m.type == "bind" || m.type == "rbind" ? nil : m.type
                let flags =
                    opts.flags | (m.type == "rbind" ? MountOptions.BIND | MountOptions.REC : 0)
                    | (m.type == "bind" ? MountOptions.BIND : 0)
                try withContext(m.target.isEmpty ? "rootfs" : "rootfs mount target \(quote(m.target))") {
                    let bind = flags & MountOptions.BIND != 0
                    try Sys.mount(m.source, held >= 0 ? "/proc/self/fd/\(held)" : target, type, bind ? flags & ~MountOptions.RDONLY : flags, opts.dataString)
                    done += 1
                    // A bind mount takes ro, nosuid, nodev and noexec only on a remount, of the new
                    // mount: the fd held from before it names the directory beneath.
                    let perMount = MountOptions.RDONLY | MountOptions.NOSUID | MountOptions.NODEV | MountOptions.NOEXEC
                    if bind && flags & perMount != 0 {
                        var top = -1 as Int32
                        defer { if top >= 0 { close(top) } }
                        if held >= 0 { top = try resolve() }
                        try Sys.mount(nil, top >= 0 ? "/proc/self/fd/\(top)" : target, nil, flags | MountOptions.REMOUNT, nil)
                    }
                }
            }
        } catch {
            if done > 0 { unmountAll(target) }
            throw error
        }
    }

    /// Unmounts everything stacked on `target` (MNT_DETACH, like containerd's UnmountAll).
    static func unmountAll(_ target: String) {
        for _ in 0..<64 {
            if umount2(target, Int32(MNT_DETACH)) != 0 { return }
        }
    }
}

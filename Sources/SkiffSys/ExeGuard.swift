import Glibc
import CSkiffSys

/// Keeps containers from overwriting the runtime's binary on the host (CVE-2019-5736 and its
/// `#!/proc/self/exe` variant).
///
/// A process that starts a container's program runs this binary until its execve. If that
/// program is a script whose interpreter is `/proc/self/exe`, the kernel runs this binary again,
/// now as a process of the container, whose other processes can open `/proc/PID/exe` and, once
/// it has exited, reopen that file for writing. So the commands that start container processes
/// first re-execute themselves from a view of the binary that cannot be written:
///
/// - a private overlayfs with no upper layer (as runc ≥ 1.2 does): read-only at the superblock,
///   so no remount makes it writable; detached, so nothing but our own `/proc/PID/exe` reaches
///   it; and sharing the page cache with the real file, so nobody's memory holds a copy;
/// - where overlayfs cannot be mounted (rootless, no overlay) and we could write the binary
///   ourselves, a sealed memfd copy. A binary we cannot write needs neither.
///
/// Same pid, argv, environment and open fds: callers see one process, as before.
public enum ExeGuard {
    /// Set for the re-executed image (and removed by it) so that it never loops. Not trusted on
    /// its own: the image that finds it must also see itself protected.
    static let marker = "_SKIFF_EXE_GUARDED"
    /// `SKIFF_EXE_GUARD=off` skips the guard: for debugging, and for the tests' control case that
    /// shows the hole. Never set it where containers run untrusted code.
    static let switchVariable = "SKIFF_EXE_GUARD"

    public enum Outcome: Equatable {
        /// The binary is already out of reach (read-only mount or sealed memfd).
        case protected
        /// The binary is not writable by us, so not by our containers either.
        case notWritable
        /// SKIFF_EXE_GUARD=off.
        case disabled
    }

    /// Re-executes the running binary protected when it is not already; returns only when that is
    /// not needed, or throws with what failed (the caller must not start container processes).
    public static func ensure(arguments: [String] = CommandLine.arguments) throws -> Outcome {
        let reexecuted = getenv(marker) != nil
        unsetenv(marker)
        if let v = getenv(switchVariable), String(cString: v) == "off" { return .disabled }
        guard let exe = FS.readlink("/proc/self/exe"), exe.hasPrefix("/") else {
            throw SkiffError.msg("protect the runtime binary: cannot read /proc/self/exe")
        }
        if isProtected(exe: exe) { return .protected }
        if reexecuted {
            throw SkiffError.msg("protect the runtime binary: re-executed, but /proc/self/exe is still writable")
        }
        var overlayError = SkiffError.msg("\(quote(exe)) was replaced while running")
        if !exe.hasSuffix(" (deleted)") {  // a replaced binary: only a copy of the old one is left
            do {
                let (mount, name) = try overlayView(of: exe)
                defer { close(mount) }
                try reexec(path: "/proc/self/fd/\(mount)/\(name)", arguments)  // returns only on failure
            } catch let e as SkiffError {
                overlayError = e
            }
        }
        // We could not take the overlay route: a binary we cannot write needs no protection.
        // Asked of the file we run (not of a path) and with the effective ids.
        if faccessat(AT_FDCWD, "/proc/self/exe", W_OK, AT_EACCESS) != 0 {
            let e = errno
            if e == EACCES || e == EROFS || e == EPERM || e == ETXTBSY { return .notWritable }
        }
        do {
            let fd = try sealedCopy(of: "/proc/self/exe")
            try reexec(path: "/proc/self/fd/\(fd)", arguments)
        } catch let e as SkiffError {
            throw SkiffError.msg("protect the runtime binary \(quote(exe)): overlayfs: \(overlayError); memfd copy: \(e)")
        }
        throw overlayError
    }

    /// Running from a read-only mount or a sealed memfd (`exe`: the /proc/self/exe link).
    static func isProtected(exe: String) -> Bool {
        var st = statvfs()
        if statvfs("/proc/self/exe", &st) == 0, st.f_flag & UInt(ST_RDONLY) != 0 { return true }
        guard exe.hasPrefix("/memfd:") else { return false }
        let fd = Glibc.open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        let seals = fd < 0 ? 0 : skiff_get_seals(fd)
        return seals >= 0 && seals & SKIFF_F_SEAL_WRITE != 0
    }

    /// A detached, read-only overlayfs over the binary's directory. Overlayfs needs a second
    /// lower layer when it has no upper one; only our binary is ever looked up in the view (and
    /// `/proc/PID/exe` leads to that file, never to its directory), so any directory that does
    /// not overlap the first serves: `/dev`, else an empty detached tmpfs. Not the tmpfs first:
    /// dropping a detached mount waits for an RCU grace period (~0.3 ms here), one more per mount.
    static func overlayView(of exe: String) throws -> (fd: Int32, name: String) {
        let slash = exe.utf8.lastIndex(of: UInt8(ascii: "/"))!
        let dir = slash == exe.utf8.startIndex ? "/" : String(exe[..<slash])
        let name = String(exe[exe.utf8.index(after: slash)...])
        if !(dir == "/" || dir == "/dev" || dir.hasPrefix("/dev/")),
            let fd = try? overlay(lower: escapeLayer(dir) + ":/dev")
        {
            return (fd, name)
        }
        let tmpfs = try fsContext("tmpfs")
        defer { close(tmpfs) }
        try fsCreate(tmpfs, "tmpfs")
        let empty = skiff_fsmount(tmpfs, SKIFF_MOUNT_ATTR_RDONLY)
        if empty < 0 { throw SkiffError.sys("fsmount", "tmpfs") }
        defer { close(empty) }
        return (try overlay(lower: escapeLayer(dir) + ":/proc/self/fd/\(empty)"), name)
    }

    static func overlay(lower: String) throws -> Int32 {
        let fs = try fsContext("overlay")
        defer { close(fs) }
        if skiff_fsconfig_string(fs, "lowerdir", lower) != 0 {
            throw SkiffError.sys("fsconfig", "overlay lowerdir=\(lower)")
        }
        try fsCreate(fs, "overlay")
        let mount = skiff_fsmount(fs, SKIFF_MOUNT_ATTR_RDONLY | SKIFF_MOUNT_ATTR_NODEV | SKIFF_MOUNT_ATTR_NOSUID)
        if mount < 0 { throw SkiffError.sys("fsmount", "overlay") }
        return mount
    }

    /// A memfd holding a copy of the binary, sealed against every change.
    static func sealedCopy(of exe: String) throws -> Int32 {
        let src = try FS.open(exe, O_RDONLY)
        defer { close(src) }
        let fd = skiff_memfd_create("skiff")
        if fd < 0 { throw SkiffError.sys("memfd_create") }
        while true {
            let n = skiff_sendfile(fd, src, 1 << 30)
            if n < 0 { close(fd); throw SkiffError.sys("sendfile", exe) }
            if n == 0 { break }
        }
        if skiff_add_seals(fd, SKIFF_F_SEAL_SEAL | SKIFF_F_SEAL_SHRINK | SKIFF_F_SEAL_GROW | SKIFF_F_SEAL_WRITE) != 0 {
            close(fd)
            throw SkiffError.sys("seal", "memfd copy")
        }
        return fd
    }

    /// For an image started protected by someone else (the shim's daemon): drop the marker so
    /// that nothing this process starts inherits it.
    public static func clearMarker() { unsetenv(marker) }

    static func reexec(path: String, _ arguments: [String]) throws {
        setenv(marker, "1", 1)
        let argv = CStringArray(arguments)
        defer { argv.free() }
        execv(path, argv.pointers)
        let e = errno
        unsetenv(marker)
        errno = e
        throw SkiffError.sys("execve", path)
    }

    static func fsContext(_ type: String) throws -> Int32 {
        let fd = skiff_fsopen(type)
        if fd < 0 { throw SkiffError.sys("fsopen", type) }
        return fd
    }

    static func fsCreate(_ fd: Int32, _ type: String) throws {
        if skiff_fsconfig_create(fd) != 0 { throw SkiffError.sys("create", "\(type) superblock") }
    }

    /// Overlayfs splits lowerdir on ':' and takes '\' as its escape.
    static func escapeLayer(_ path: String) -> String {
        var out = ""
        for c in path.unicodeScalars {
            if c == ":" || c == "\\" || c == "," { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out
    }
}

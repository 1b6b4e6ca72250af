import Glibc
import CSkiffSys
import SkiffSys

/// Paths inside a root directory, resolved once by the kernel and handed on as descriptors.
///
/// openat2(RESOLVE_IN_ROOT) treats the root fd as "/": `..` and absolute symlinks cannot leave it,
/// and RESOLVE_NO_MAGICLINKS refuses /proc/self/fd/N, /proc/PID/root and their kin, which name
/// objects outside any root. What comes back is an O_PATH fd; mounting onto it, creating in it or
/// changing into it acts on exactly what was resolved, so a rootfs writer who swaps a directory
/// for a symlink between two steps gains nothing (there is no second resolution).
public enum InRoot {
    public static let oPath: Int32 = 0o10000000
    static let resolveFlags = SKIFF_RESOLVE_IN_ROOT | SKIFF_RESOLVE_NO_MAGICLINKS

    /// Opens `path` (absolute or relative, always taken inside the root) as an O_PATH fd, or with
    /// `flags`. `noSymlinks` refuses any symlink on the way (ELOOP).
    public static func open(_ root: Int32, _ path: String, flags: Int32 = oPath, noSymlinks: Bool = false) -> Int32 {
        let rel = relative(path)
        let resolve = resolveFlags | (noSymlinks ? SKIFF_RESOLVE_NO_SYMLINKS : 0)
        return retryEINTR { skiff_openat2(root, rel, UInt64(flags | O_CLOEXEC), 0, resolve) }
    }

    /// Like `open`, throwing an error that names the path as the container sees it.
    public static func openOrThrow(
        _ root: Int32, _ path: String, flags: Int32 = oPath, noSymlinks: Bool = false,
        op: String = "open"
    ) throws -> Int32 {
        let fd = open(root, path, flags: flags, noSymlinks: noSymlinks)
        if fd < 0 { throw error(op, path) }
        return fd
    }

    /// Opens the directory `path`, creating what is missing (mode `mode`), each component with
    /// mkdirat in the descriptor of its resolved parent. A dangling symlink on the way is
    /// followed as the container would see it: its target is created inside the root (as runc's
    /// MkdirAll over a securejoin'ed path does).
    public static func mkdirAll(_ root: Int32, _ path: String, mode: mode_t = 0o755, noSymlinks: Bool = false) throws -> Int32 {
        let direct = open(root, path, flags: oPath | O_DIRECTORY, noSymlinks: noSymlinks)
        if direct >= 0 || errno != ENOENT { if direct < 0 { throw error("open", path) }; return direct }
        var remaining = path
        for _ in 0..<40 {  // symlinks followed by hand, as the kernel's own limit
            switch try mkdirWalk(root, remaining, mode: mode, noSymlinks: noSymlinks) {
            case .done(let fd): return fd
            case .restart(let next): remaining = next
            }
        }
        throw SkiffError("mkdir", path, errno: ELOOP)
    }

    enum Walk { case done(Int32), restart(String) }

    static func mkdirWalk(_ root: Int32, _ path: String, mode: mode_t, noSymlinks: Bool) throws -> Walk {
        var parent = retryEINTR { skiff_fcntl_dupfd(root, 3) }
        if parent < 0 { throw SkiffError.sys("dup", "root") }
        var prefix = ""
        let comps = path.split(separator: "/").filter { $0 != "." }
        for (i, comp) in comps.enumerated() {
            let parentPrefix = prefix
            prefix += (prefix.isEmpty ? "" : "/") + comp
            var fd = open(root, prefix, flags: oPath | O_DIRECTORY, noSymlinks: noSymlinks)
            if fd < 0 && errno == ENOENT && comp != ".." {
                if mkdirat(parent, String(comp), mode) != 0 {
                    if errno != EEXIST {
                        let e = error("mkdir", "/" + prefix)
                        close(parent)
                        throw e
                    }
                    // Something is there that did not resolve: a dangling symlink. Continue at its target.
                    if !noSymlinks, let target = readlinkAt(parent, String(comp)) {
                        close(parent)
                        let rest = comps[(i + 1)...].joined(separator: "/")
                        let base = target.hasPrefix("/") ? target : parentPrefix + "/" + target
                        return .restart(rest.isEmpty ? base : base + "/" + rest)
                    }
                }
                fd = open(root, prefix, flags: oPath | O_DIRECTORY, noSymlinks: noSymlinks)
            }
            if fd < 0 {
                let e = error("mkdir", "/" + prefix)
                close(parent)
                throw e
            }
            close(parent)
            parent = fd
        }
        return .done(parent)
    }

    static func readlinkAt(_ dir: Int32, _ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlinkat(dir, name, &buf, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Opens the file `path` as an O_PATH fd, creating an empty one (and its directories) if
    /// nothing is there. An existing directory is refused: a file cannot be mounted over it.
    public static func createFile(_ root: Int32, _ path: String, mode: mode_t = 0o644) throws -> Int32 {
        let direct = open(root, path)
        if direct >= 0 {
            var st = Glibc.stat()
            if fstat(direct, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                close(direct)
                throw SkiffError("create file", path, errno: EISDIR)
            }
            return direct
        }
        if errno != ENOENT { throw error("open", path) }
        let (dir, name) = split(path)
        let parent = try mkdirAll(root, dir)
        defer { close(parent) }
        let fd = retryEINTR { Glibc.openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode) }
        if fd >= 0 { close(fd) } else if errno != EEXIST { throw error("create", path) }
        return try openOrThrow(root, path)
    }

    /// The directory of `path` (created) and its last component, for mknodat/symlinkat.
    public static func parent(_ root: Int32, _ path: String) throws -> (fd: Int32, name: String) {
        let (dir, name) = split(path)
        return (try mkdirAll(root, dir), name)
    }

    static func split(_ path: String) -> (String, String) {
        let clean = FS.clean(path)
        return (FS.dirname(clean), FS.basename(clean))
    }

    static func relative(_ path: String) -> String {
        let rel = String(path.drop(while: { $0 == "/" }))
        return rel.isEmpty ? "." : rel
    }

    static func error(_ op: String, _ path: String) -> SkiffError {
        let e = errno
        var err = SkiffError(op, path, errno: e)
        switch e {
        case ELOOP: err.hint = "a symlink or a /proc magic link on the way leads outside the container, or is refused here"
        case EXDEV: err.hint = "the path crosses a mount it may not cross"
        default: break
        }
        return err
    }
}

import Glibc
import SkiffSys

/// Resolves a container path under a root directory the way the container will see it: symlinks
/// are followed as if `root` were "/", so `..` and absolute link targets can never leave the root.
/// Missing trailing components are kept lexically (they are created later, inside the root).
public enum SecurePath {
    public static let maxSymlinks = 255

    /// Returns the host path (`root` + resolved in-root path).
    public static func resolve(root: String, _ unsafePath: String) throws -> String {
        let rootClean = FS.clean(root)
        let inRoot = try resolveInRoot(root: rootClean, unsafePath)
        return inRoot == "/" ? rootClean : (rootClean == "/" ? inRoot : rootClean + inRoot)
    }

    /// Returns the resolved path as seen from inside the root ("/a/b").
    public static func resolveInRoot(root: String, _ unsafePath: String) throws -> String {
        var pending: [Substring] = unsafePath.split(separator: "/").reversed()
        var resolved: [Substring] = []
        var links = 0
        while let comp = pending.popLast() {
            if comp == "." { continue }
            if comp == ".." { if !resolved.isEmpty { resolved.removeLast() }; continue }
            let candidate = root + "/" + (resolved + [comp]).joined(separator: "/")
            guard let st = FS.linkStat(candidate), (st.st_mode & S_IFMT) == S_IFLNK else {
                resolved.append(comp)
                continue
            }
            links += 1
            if links > maxSymlinks { throw SkiffError("resolve path", unsafePath, errno: ELOOP) }
            guard let target = FS.readlink(candidate) else { throw SkiffError.sys("readlink", candidate) }
            if target.hasPrefix("/") { resolved = [] }
            pending.append(contentsOf: target.split(separator: "/").reversed())
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// Creates every missing directory of an in-root path, re-resolving after each step so a
    /// symlink planted between steps is still confined to the root.
    public static func mkdirAll(root: String, _ inRootPath: String, mode: mode_t = 0o755) throws -> String {
        var cur = "/"
        for comp in inRootPath.split(separator: "/") {
            let next = try resolveInRoot(root: root, cur + (cur == "/" ? "" : "/") + comp)
            let host = root + next
            if let st = FS.linkStat(host) {
                if (st.st_mode & S_IFMT) != S_IFDIR { throw SkiffError("mkdir", next, errno: ENOTDIR) }
            } else if mkdir(host, mode) != 0 && errno != EEXIST {
                throw SkiffError.sys("mkdir", host)
            }
            cur = next
        }
        return root + (cur == "/" ? "" : cur)
    }

    /// Opens a resolved path with openat2(RESOLVE_IN_ROOT) as an O_PATH fd: the kernel re-checks
    /// that it lies inside the root, closing the race between resolution and mount.
    public static func openInRoot(rootFd: Int32, _ inRootPath: String) throws -> Int32 {
        let rel = String(inRootPath.drop(while: { $0 == "/" }))
        let fd = skiffOpenat2(rootFd, rel.isEmpty ? "." : rel)
        if fd < 0 { throw SkiffError.sys("open in rootfs", inRootPath) }
        return fd
    }
}

import CSkiffSys
func skiffOpenat2(_ dirfd: Int32, _ path: String) -> Int32 {
    retryEINTR {
        skiff_openat2(dirfd, path, UInt64(0o10000000 | O_CLOEXEC) /* O_PATH */, 0, SKIFF_RESOLVE_IN_ROOT | SKIFF_RESOLVE_NO_MAGICLINKS)
    }
}

import Glibc
import CSkiffSys
import SkiffSys

/// runc's HOME: a process whose environment has no HOME, or an empty one, gets the home of its
/// uid in the container's /etc/passwd (the first entry whose uid, or whose name, is that
/// number), else "/". Read once the root is the container's, as the container resolves it but
/// without magic links, without waiting on a FIFO or taking a device, and at most 4 MiB of it
/// (an image's passwd is a few kilobytes).
enum UserHome {
    static func environment(_ env: [String], uid: UInt32) -> [String] {
        var emptyAt: Int?
        for (i, e) in env.enumerated() where e.hasPrefix("HOME=") {
            if e.utf8.count > 5 { return env }
            if emptyAt == nil { emptyAt = i }
        }
        var out = env
        let home = "HOME=" + (lookup(uid: uid) ?? "/")
        if let i = emptyAt { out[i] = home } else { out.append(home) }
        return out
    }

    static func lookup(uid: UInt32) -> String? {
        let fd = retryEINTR {
            skiff_openat2(AT_FDCWD, "/etc/passwd", UInt64(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), 0, SKIFF_RESOLVE_NO_MAGICLINKS)
        }
        if fd < 0 { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG,
            let bytes = try? FS.readAll(fd: fd, limit: 4 << 20)
        else { return nil }
        let wanted = String(uid)
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            // name:password:uid:gid:gecos:home:shell
            let f = line.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard f.count >= 6 else { continue }
            let name = String(decoding: f[0], as: UTF8.self)
            let id = String(decoding: f[2], as: UTF8.self)
            if id == wanted || name == wanted { return String(decoding: f[5], as: UTF8.self) }
        }
        return nil
    }
}

import Foundation
import CSkiffSys
import SkiffSys

/// skiffctl run by a user who is not root (rootless, as podman does it): every command runs in a
/// user namespace of its own where the user is root and ids 1...N are the user's subordinate
/// ids (/etc/subuid, /etc/subgid, written by newuidmap/newgidmap), plus a mount namespace. Layers
/// unpack there with their owners (shifted into the user's range on disk), overlay snapshots
/// mount there (kernel ≥ 5.11, `userxattr`), and the shims it starts live on in it. The store
/// is the user's: $XDG_DATA_HOME/skiff (else ~/.local/share/skiff), state $XDG_RUNTIME_DIR/skiff.
public enum UserSession {
    static let marker = "SKIFF_USERNS_SESSION"

    /// True inside the session a non-root skiffctl made for itself.
    public static var active: Bool { getenv(marker) != nil }

    /// The store's default root and state for who runs skiffctl.
    public static var defaultRoot: String {
        guard geteuid() != 0 || active else { return "/var/lib/skiff" }
        if let d = env("XDG_DATA_HOME"), !d.isEmpty { return d + "/skiff" }
        return (env("HOME") ?? "/tmp") + "/.local/share/skiff"
    }

    public static var defaultState: String {
        guard geteuid() != 0 || active else { return "/run/skiff" }
        return defaultStateOutside(uid: getuid())
    }

    static func defaultStateOutside(uid: uid_t) -> String {
        if let d = env("XDG_RUNTIME_DIR"), !d.isEmpty { return d + "/skiff" }
        return "/tmp/skiff-\(uid)"
    }

    static func env(_ k: String) -> String? { getenv(k).map { String(cString: $0) } }

    /// A non-root caller re-runs itself inside the session and exits with its status; call
    /// first thing, while the process has one thread (unshare(CLONE_NEWUSER) needs that).
    public static func enterIfNeeded() {
        guard geteuid() != 0, !active else { return }
        do { exit(try runInSession()) } catch {
            FileHandle.standardError.write(Data("skiffctl: \(error)\n".utf8))
            exit(1)
        }
    }

    static func runInSession() throws -> Int32 {
        let uid = getuid(), gid = getgid()
        // State and shim sockets live in $XDG_RUNTIME_DIR: it must be the user's own. Without it
        // they would be a guessable /tmp path another user could make first and listen in.
        guard let xdg = env("XDG_RUNTIME_DIR"), xdg.hasPrefix("/") else {
            throw ManagerError(
                "rootless", "XDG_RUNTIME_DIR", "not set", hint: "a login session (pam_systemd) sets it; else point it at a directory only you can write")
        }
        var st = stat()
        guard stat(xdg, &st) == 0, st.st_uid == uid, st.st_mode & 0o022 == 0 else {
            throw ManagerError(
                "rootless", xdg, "XDG_RUNTIME_DIR is not a directory of yours that only you can write",
                hint: "chmod 700 it, or set XDG_RUNTIME_DIR to one that is")
        }
        let name = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "\(uid)"
        guard let subuid = subordinate("/etc/subuid", name: name, id: uid) else {
            throw ManagerError(
                "rootless", "/etc/subuid", "no subordinate uids for \(name)",
                hint: "add a range (usermod --add-subuids 100000-165535 \(name)); skiffctl maps image owners into it")
        }
        guard let subgid = subordinate("/etc/subgid", name: name, id: gid) else {
            throw ManagerError("rootless", "/etc/subgid", "no subordinate gids for \(name)", hint: "usermod --add-subgids 100000-165535 \(name)")
        }
        // The setuid helpers from the system's directories, whatever PATH says.
        let newuidmap = FS.which("newuidmap", path: "/usr/bin:/usr/sbin"), newgidmap = FS.which("newgidmap", path: "/usr/bin:/usr/sbin")
        guard let newuidmap, let newgidmap else {
            throw ManagerError("rootless", "newuidmap", "not installed", hint: "apt install uidmap")
        }
        var toChild: [Int32] = [0, 0], toParent: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&toParent) == 0 else { throw ManagerError("rootless", "pipe", String(cString: strerror(errno))) }
        let argv = CommandLine.arguments
        setenv(marker, "1", 1)
        // Shims listen where every session of this user finds them (not /run/containerd/s).
        setenv("SKIFF_SHIM_SOCKET_DIR", defaultStateOutside(uid: uid) + "/s", 1)
        let pid = fork()
        if pid == 0 {
            close(toChild[1]); close(toParent[0])
            var byte: UInt8 = skiff_unshare(Int32(SKIFF_CLONE_NEWUSER | SKIFF_CLONE_NEWNS)) == 0 ? 1 : 0
            _ = write(toParent[1], &byte, 1)
            guard byte == 1, read(toChild[0], &byte, 1) == 1, byte == 1 else { _exit(125) }
            // Root of the new namespace; mounts made here stay here.
            guard skiff_setresgid(0, 0, 0) == 0, skiff_setresuid(0, 0, 0) == 0 else { _exit(125) }
            _ = mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil)
            let cargs = argv.map { strdup($0) } + [nil]
            execv("/proc/self/exe", cargs)
            _exit(127)
        }
        close(toChild[0]); close(toParent[1])
        unsetenv(marker)
        guard pid > 0 else { throw ManagerError("rootless", "fork", String(cString: strerror(errno))) }
        var byte: UInt8 = 0
        guard read(toParent[0], &byte, 1) == 1, byte == 1 else {
            _ = waitpid(pid, nil, 0)
            throw ManagerError("rootless", "user namespace", "unshare refused", hint: "is kernel.unprivileged_userns_clone 0 here?")
        }
        // The user's own id as root, its range as 1...
        let maps: [(String, UInt32, (start: UInt32, count: UInt32))] = [(newuidmap, UInt32(uid), subuid), (newgidmap, UInt32(gid), subgid)]
        for (tool, own, range) in maps {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = ["\(pid)", "0", "\(own)", "1", "1", "\(range.start)", "\(range.count)"]
            let err = Pipe()
            p.standardError = err
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 {
                kill(pid, SIGKILL); _ = waitpid(pid, nil, 0)
                let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                throw ManagerError("rootless", tool, text.isEmpty ? "exit status \(p.terminationStatus)" : text)
            }
        }
        byte = 1
        _ = write(toChild[1], &byte, 1)
        // Ctrl-C and SIGTERM are the session's to handle; we only wait.
        signal(SIGINT, SIG_IGN); signal(SIGTERM, SIG_IGN)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f != 0 { return 128 + (status & 0x7f) }
        return (status >> 8) & 0xff
    }

    /// The first range of `name` (or its uid/gid as a number) in /etc/subuid or /etc/subgid, at most 65536 ids.
    static func subordinate(_ file: String, name: String, id: UInt32) -> (start: UInt32, count: UInt32)? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":")
            guard f.count == 3, f[0] == name || f[0] == "\(id)", let s = UInt32(f[1]), let n = UInt32(f[2]), n > 0 else { continue }
            return (s, min(n, 65536))
        }
        return nil
    }
}

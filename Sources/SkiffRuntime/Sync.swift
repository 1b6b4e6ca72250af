import Glibc
import CSkiffSys
import SkiffSys

/// The parent ↔ child protocol of `create` and `exec`, one datagram per message on a
/// SOCK_SEQPACKET socketpair (runc's libcontainer/sync.go, youki's channel.rs are the models).
///
/// create:
///
///     parent (create)                      stage one                  init
///     ───────────────                      ─────────                  ────
///                        ◀── pid(N) ────── (pid socket; or error)
///     writes id maps     ── mapped ──────────────────────────────────▶   (new user namespace)
///                        ◀──────────────────────────────────────── runHooks (prestart/createRuntime)
///     runs the hooks     ── hooksDone ───────────────────────────────▶
///                        ◀──────────────────────────────────────── seccompFd(n) (SCMP_ACT_NOTIFY)
///     pidfd_getfd(n),
///     hands it to the
///     listenerPath agent ── seccompDone ─────────────────────────────▶
///                        ◀──────────────────────────────────────── ready
///     returns; the init waits on exec.fifo for `start`
///
/// exec: stage one sends pid(N); the exec'd process may send seccompFd(n) (answered with
/// seccompDone); EOF (the socket is close-on-exec) means execve succeeded.
/// Either side may send error(e) instead of what is expected: the receiver throws `e` as if it
/// had happened there, so an error inside the container prints exactly like one in the CLI.
enum SyncMessage: Equatable {
    case pid(pid_t)
    case mapped
    case runHooks
    case hooksDone
    case seccompFd(Int32)
    case seccompDone
    case ready
    case error(SkiffError)

    var encoded: String {
        switch self {
        case .pid(let p): return "pid \(p)"
        case .mapped: return "mapped"
        case .runHooks: return "hooks"
        case .hooksDone: return "hooks-done"
        case .seccompFd(let fd): return "seccomp \(fd)"
        case .seccompDone: return "seccomp-done"
        case .ready: return "ready"
        case .error(let e): return "error " + ErrorCodec.encode(e)
        }
    }

    init(decoding s: String) throws {
        func number(_ prefix: String) -> Int32? { s.hasPrefix(prefix) ? Int32(s.dropFirst(prefix.count)) : nil }
        switch s {
        case "mapped": self = .mapped
        case "hooks": self = .runHooks
        case "hooks-done": self = .hooksDone
        case "seccomp-done": self = .seccompDone
        case "ready": self = .ready
        default:
            if let p = number("pid ") {
                self = .pid(p)
            } else if let fd = number("seccomp ") {
                self = .seccompFd(fd)
            } else if s.hasPrefix("error ") {
                self = .error(ErrorCodec.decode(String(s.dropFirst(6))))
            } else {
                throw SkiffError.msg("unexpected message \(quote(s)) from the container's setup")
            }
        }
    }
}

/// One end of the sync socket.
struct SyncSocket {
    let fd: Int32

    /// write(2), not send(2): after a seccomp filter is loaded the init still reports through
    /// here, and profiles allow write (SCMP_ACT_NOTIFY on write is refused at create for this).
    func send(_ m: SyncMessage) throws {
        let bytes = Array(m.encoded.utf8)
        let n = bytes.withUnsafeBytes { p in retryEINTR { Glibc.write(fd, p.baseAddress, p.count) } }
        if n < 0 { throw SkiffError.sys("send", "sync socket") }
    }

    /// The next message; nil when the other side closed its end (exited, or exec'd).
    func receive() throws -> SyncMessage? {
        guard let text = try Sys.recvMessage(fd) else { return nil }
        return try SyncMessage(decoding: text)
    }

    /// The next message must be `m`; an error message is thrown as it is.
    func expect(_ m: SyncMessage, from peer: String = "the runtime") throws {
        guard let got = try receive() else { throw SkiffError.msg("\(peer) went away during setup") }
        if case .error(let e) = got { throw e }
        if got != m { throw SkiffError.msg("unexpected message \(quote(got.encoded)) during setup (wanted \(m.encoded))") }
    }

    /// Reports `error` to the other side (best effort: we are failing anyway).
    func report(_ error: Error) {
        let e = (error as? SkiffError) ?? SkiffError.msg("\(error)")
        try? send(.error(e))
    }
}

/// A SkiffError as one line of text: fields separated by U+001F, each field escaped (U+001B
/// starts an escape) so a path containing either character cannot shift the fields.
enum ErrorCodec {
    static let sep: Character = "\u{1f}", esc: Character = "\u{1b}"

    static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == sep || $0 == esc }) else { return s }
        var out = ""
        for c in s {
            if c == esc { out += "\u{1b}e" } else if c == sep { out += "\u{1b}s" } else { out.append(c) }
        }
        return out
    }

    static func unescape(_ s: Substring) -> String {
        guard s.contains(esc) else { return String(s) }
        var out = ""
        var pending = false
        for c in s {
            if pending { out.append(c == "s" ? sep : esc); pending = false } else if c == esc { pending = true } else { out.append(c) }
        }
        return out
    }

    /// op, object, errno, detail, hint, kind, then the context (any number of fields).
    static func encode(_ e: SkiffError) -> String {
        ([e.op, e.object ?? "", e.errno.map { String($0) } ?? "", e.detail ?? "", e.hint ?? "", e.kind?.rawValue ?? ""] + e.context)
            .map(escape).joined(separator: String(sep))
    }

    static func decode(_ s: String) -> SkiffError {
        let f = s.split(separator: sep, omittingEmptySubsequences: false).map(unescape)
        guard f.count >= 6 else { return SkiffError.msg(s) }
        var e = SkiffError(
            f[0], f[1].isEmpty ? nil : f[1], errno: Int32(f[2]), detail: f[3].isEmpty ? nil : f[3],
            hint: f[4].isEmpty ? nil : f[4])
        e.kind = SkiffError.Kind(rawValue: f[5])
        e.context = Array(f.dropFirst(6))
        return e
    }
}

import Glibc
import CSkiffSys
import SkiffSys

/// How a created init waits for `start` and tells it how the start went, through exec.fifo.
///
/// runc's init holds an O_PATH fd of the FIFO and reopens it for writing through
/// /proc/self/fd, which blocks until `start` opens it for reading. That needs a procfs in the
/// container (the spec's minimal config has none), and the fallback of keeping the state
/// directory open handed a host directory to any neighbour with CAP_SYS_PTRACE. Here the init
/// holds the FIFO read-write from create on and fills its buffer; its next write blocks until
/// `start` reads:
///
///     create:  open(exec.fifo, O_RDWR) -> init
///     init:    F_SETPIPE_SZ 4096, write "." until EAGAIN      (before ready)
///              write "w"                                      (blocks: the barrier)
///              startContainer hooks, then "0" and execve ("E<error>" if either fails)
///     start:   read until EOF (the fd closes at execve or exit); drop the padding and "w"
///
/// A `start` of a container made by an older skiff (which wrote "0" after a blocking open)
/// reads the same answer without padding.
enum StartBarrier {
    static let padding = UInt8(ascii: ".")
    static let passed = UInt8(ascii: "w")

    /// Fills the FIFO's buffer so that the next write waits for a reader.
    static func fill(_ fd: Int32) throws {
        _ = skiff_set_pipe_size(fd, 4096)  // the smallest buffer: least to write and to read
        let flags = skiff_fcntl_getfl(fd)
        if flags < 0 || skiff_fcntl_setfl(fd, flags | O_NONBLOCK) != 0 { throw SkiffError.sys("fcntl", "exec.fifo") }
        let chunk = [UInt8](repeating: padding, count: 4096)
        while true {
            let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            throw SkiffError.sys("fill", "exec.fifo")
        }
        if skiff_fcntl_setfl(fd, flags & ~O_NONBLOCK) != 0 { throw SkiffError.sys("fcntl", "exec.fifo") }
    }

    /// Blocks until `start` reads. False if the FIFO broke.
    static func wait(_ fd: Int32) -> Bool {
        var b = passed
        while true {
            let n = Glibc.write(fd, &b, 1)
            if n == 1 { return true }
            if n < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// `start`'s reading of what the init wrote: nil once the init passed the barrier and ran
    /// the process ("0"); the error it sent; or a generic one if it ended without a word.
    static func outcome(_ data: [UInt8], id: String) -> SkiffError? {
        var rest = data[...].drop(while: { $0 == padding })
        if rest.first == passed { rest = rest.dropFirst() }
        let text = String(decoding: rest, as: UTF8.self)
        // "0E<error>": the hooks passed, then execve failed.
        if let e = text.firstIndex(of: "E") { return ErrorCodec.decode(String(text[text.index(after: e)...])) }
        if text.hasPrefix("0") { return nil }
        return SkiffError.msg("cannot start container \(quote(id)): its init exited before running the process")
    }
}

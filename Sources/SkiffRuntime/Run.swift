import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec

/// The init pid that the foreground `run` forwards signals to.
nonisolated(unsafe) private var forwardTarget: pid_t = 0

extension Runtime {
    /// `run`: create + start; in the foreground it waits, proxies the terminal and signals,
    /// returns the container's exit code and deletes the container unless `keep`.
    public func run(id: String, options: CreateOptions, detach: Bool, keep: Bool) throws -> Int32 {
        if detach {
            var opts = options
            opts.pipeBarrier = true
            let made = try createContainer(id: id, options: opts)
            do { try startCreated(made) } catch { try? delete(id: id, force: true); throw error }
            return 0
        }
        var opts = options
        opts.foreground = true
        opts.pipeBarrier = true
        let loaded = try Runtime.load(bundle: FS.absolute(options.bundle))
        opts.loaded = loaded
        let spec = loaded.spec
        let terminal = spec.process?.terminal == true && options.consoleSocket == nil
        var consoleEnds: (Int32, Int32)? = nil
        if terminal {
            consoleEnds = try Sys.socketpair(seqpacket: false)
            opts.consoleSocketFd = consoleEnds!.1
        }
        let made: Created
        do {
            made = try createContainer(id: id, options: opts)
        } catch {
            if let c = consoleEnds { close(c.0); close(c.1) }
            throw error
        }
        let pid = made.pid
        var master: Int32 = -1
        if let c = consoleEnds {
            close(c.1)
            defer { close(c.0) }
            do { master = try Sys.recvFd(c.0).fd } catch { made.closeFds(); try? delete(id: id, force: true); throw error }
        }
        forwardSignals(to: pid)
        do { try startCreated(made) } catch {
            try? delete(id: id, force: true)
            throw error
        }
        let status = waitForeground(pid: pid, master: master)
        if !keep { try? deleteReaped(made.record) }
        return exitCode(fromWaitStatus: status)
    }

    /// `start` of a container this process just made with a pipe barrier: under the lock create
    /// took, from the record it saved (no second read of the state); closes both.
    func startCreated(_ made: Created) throws {
        defer { made.closeFds() }
        try passBarrier(made.record, made.barrier, fifo: false)
    }

    /// The foreground `run`'s delete once it has reaped the init: from the record it made, under
    /// the lock; nothing if someone deleted it meanwhile, and nothing if the id now names
    /// another container (deleted and created again while we were stopped).
    func deleteReaped(_ r: ContainerRecord) throws {
        let lock = try store.lock(r.id)
        defer { close(lock) }
        guard let now = try? store.load(r.id), now.pid == r.pid, now.startTime == r.startTime else { return }
        try destroy(r)
    }

    /// Signals the runtime receives go to `pid` (the foreground container or exec'd process).
    func forwardSignals(to pid: pid_t) {
        forwardTarget = pid
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH] {
            signal(s) { sig in if forwardTarget > 0 { Glibc.kill(forwardTarget, sig) } }
        }
    }

    /// Waits for a foreground process, forwarding signals and proxying its terminal when it has
    /// one (`master` >= 0). Returns the raw wait status.
    func waitForeground(pid: pid_t, master: Int32) -> Int32 {
        forwardSignals(to: pid)
        defer { forwardTarget = 0 }
        guard master >= 0 else { return Sys.wait(pid).status }
        defer { close(master) }
        return proxyTerminal(master: master, pid: pid)
    }

    /// Copies stdin → pty master and master → stdout until the init exits; raw mode on a tty.
    /// When our own output is gone (the reader of our stdout went away: EPIPE; the terminal hung
    /// up: EIO) relaying stops and the process is killed, so `run` ends with its exit code
    /// instead of spinning on failed writes for a process nobody can see or stop.
    func proxyTerminal(master: Int32, pid: pid_t) -> Int32 {
        var saved = termios()
        let isTTY = isatty(0) == 1
        if isTTY {
            tcgetattr(0, &saved)
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(0, TCSANOW, &raw)
            var rows: UInt16 = 0, cols: UInt16 = 0
            if skiff_get_winsize(0, &rows, &cols) == 0 { _ = skiff_set_winsize(master, rows, cols) }
        }
        defer { if isTTY { tcsetattr(0, TCSANOW, &saved) } }
        let pidfd = skiff_pidfd_open(pid, 0)
        var buf = [UInt8](repeating: 0, count: 16384)
        var stdinOpen = true
        var outputGone = false
        /// Reads what `from` has; false once it is at its end.
        func pump(_ from: Int32, _ to: Int32) -> Bool {
            let n = buf.withUnsafeMutableBytes { Glibc.read(from, $0.baseAddress, $0.count) }
            if n <= 0 { return n < 0 && (errno == EINTR || errno == EAGAIN) }
            if to == 1 && outputGone { return true }  // drained, not relayed
            do { try FS.writeAll(fd: to, Array(buf[0..<n])) } catch let e as SkiffError where to == 1 {
                if e.errno == EPIPE || e.errno == EIO || e.errno == EBADF {
                    outputGone = true
                    Glibc.kill(pid, SIGKILL)
                }
            } catch {}
            return true
        }
        while true {
            var fds = [
                pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0)
            ]
            let r = poll(&fds, 3, -1)
            if r < 0 { if errno == EINTR { continue }; break }
            if fds[0].revents & Int16(POLLIN) != 0 { _ = pump(master, 1) }
            if fds[2].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                if !pump(0, master) {
                    stdinOpen = false
                    // A terminal that hung up (EIO) is gone for output too.
                    if errno == EIO && !outputGone { outputGone = true; Glibc.kill(pid, SIGKILL) }
                }
            }
            if fds[1].revents != 0 || fds[0].revents & Int16(POLLHUP | POLLERR) != 0 {
                // Drain what is left, then reap.
                _ = skiff_fcntl_setfl(master, skiff_fcntl_getfl(master) | O_NONBLOCK)
                while true {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    if !outputGone { _ = try? FS.writeAll(fd: 1, Array(buf[0..<n])) }
                }
                break
            }
        }
        if pidfd >= 0 { close(pidfd) }
        return Sys.wait(pid).status
    }
}

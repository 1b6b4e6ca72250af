import Glibc
import CSkiffSys
import SkiffSys
import SkiffEventLoop

/// Where a pump delivers bytes.
enum Sink {
    /// A non-blocking fd (FIFO, pipe, pty master).
    case fd(Int32)
    /// A `file://` log.
    case log(RotatingLog)
}

/// Copies one source fd to a sink on the event loop. Output pumps always read, so a container
/// never blocks on a reader that went away: beyond `cap` buffered bytes the oldest are dropped
/// (and counted in the shim log). The stdin pump instead stops reading while its buffer is full.
final class Pump {
    let loop: EventLoop
    let name: String
    let src: Int32
    let sink: Sink
    let ownsSrc: Bool
    let dropWhenFull: Bool
    let cap: Int
    var buffer: [UInt8] = []
    var eof = false
    var sinkDead = false
    var finished = false
    var watching = false
    var retryScheduled = false
    var dropped = 0
    /// Bytes a log file could not take (a full disk), and who is told about it.
    var lost = 0
    var onLoss: ((Int, String) -> Void)?
    /// Runs once when the source hit EOF and everything buffered went out.
    var onDone: (() -> Void)?

    init(
        loop: EventLoop, name: String, src: Int32, sink: Sink, ownsSrc: Bool = true, dropWhenFull: Bool = true,
        cap: Int = 8 << 20
    ) {
        self.loop = loop; self.name = name; self.src = src; self.sink = sink
        self.ownsSrc = ownsSrc; self.dropWhenFull = dropWhenFull; self.cap = cap
        // Non-blocking from the start: a pump stopped before its process ran must not block.
        _ = skiff_fcntl_setfl(src, skiff_fcntl_getfl(src) | O_NONBLOCK)
        if case .fd(let fd) = sink { _ = skiff_fcntl_setfl(fd, skiff_fcntl_getfl(fd) | O_NONBLOCK) }
    }

    func start() throws {
        try loop.add(src) { [weak self] _ in self?.readable() }
        watching = true
    }

    func readable() {
        readAvailable(maxReads: 16)
        flush()
    }

    /// Reads until EAGAIN/EOF (or `maxReads` chunks, to stay fair to other fds).
    func readAvailable(maxReads: Int) {
        guard !eof else { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<maxReads {
            if !dropWhenFull && buffer.count >= cap { pause(); return }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(src, $0.baseAddress, $0.count) }
            if n > 0 {
                append(chunk[0..<n])
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            // 0 = EOF; EIO = the pty's last slave closed; anything else ends the stream too.
            sourceEnded()
            return
        }
    }

    func append(_ bytes: ArraySlice<UInt8>) {
        if sinkDead { return }
        buffer += bytes
        if dropWhenFull && buffer.count > cap {
            let excess = buffer.count - cap
            buffer.removeFirst(excess)
            if dropped == 0 { Logger.shared.warn("\(name): nobody reads this stream; dropping the oldest output beyond \(cap) bytes") }
            dropped += excess
        }
    }

    func pause() {
        if watching { loop.remove(src); watching = false }
    }

    func resumeIfPaused() {
        if !watching && !eof && !finished {
            if (try? loop.add(src, { [weak self] _ in self?.readable() })) != nil { watching = true }
        }
    }

    func sourceEnded() {
        eof = true
        pause()
        if ownsSrc { close(src) }
    }

    /// Writes what is buffered; EAGAIN retries on a short timer (a sink may be shared by
    /// pumps, e.g. a pty master is both a source and a sink, so it is not watched for EPOLLOUT).
    func flush() {
        while !buffer.isEmpty && !sinkDead {
            switch sink {
            case .log(let log):
                // A full disk loses this chunk, not the rest of the stream: the next chunk tries
                // again. The loss is reported where the user looks (onLoss), not only our log.
                do { try log.write(buffer) } catch {
                    if lost == 0 { Logger.shared.error("\(name): \(error)") }
                    lost += buffer.count
                    onLoss?(lost, "\(error)")
                }
                buffer.removeAll(keepingCapacity: true)
            case .fd(let fd):
                let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n > 0 { buffer.removeFirst(n); continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    scheduleRetry()
                    return
                }
                // EPIPE and friends: nobody will ever read this; keep draining the source.
                sinkDead = true
                buffer.removeAll()
            }
        }
        if sinkDead { buffer.removeAll() }
        if !dropWhenFull && buffer.count < cap { resumeIfPaused() }
        if eof && buffer.isEmpty && !finished {
            finished = true
            if dropped > 0 { Logger.shared.warn("\(name): \(dropped) bytes of output were dropped") }
            onDone?()
        }
    }

    func scheduleRetry() {
        guard !retryScheduled else { return }
        retryScheduled = true
        loop.after(ms: 20) { [weak self] in
            guard let self else { return }
            self.retryScheduled = false
            self.flush()
        }
    }

    /// Reads whatever the source holds right now (a process just exited) and writes it out.
    func drainNow() {
        readAvailable(maxReads: 1024)
        flush()
    }

    /// Stops the pump for good (delete): the source is closed, buffered bytes are given one
    /// last chance.
    func stop() {
        if !eof { drainNow(); sourceEnded() }
        flush()
        buffer.removeAll()
        if !finished { finished = true; onDone?() }
    }
}

/// The stdio of one container process, as containerd asks for it: FIFOs (the default), a
/// `file://` log, a `binary://` logger, or a terminal. The shim holds the reading ends and the
/// copies run on the event loop.
public final class ProcessIO {
    let loop: EventLoop
    public let terminal: Bool
    /// fds 0-2 for the process (closed in the shim once it runs); unused with a terminal.
    public internal(set) var childStdio: [Int32] = []
    /// Our end of the in-process console socket, and the end the runtime gets.
    var consoleOurs: Int32 = -1
    public internal(set) var consoleTheirs: Int32 = -1
    var master: Int32 = -1
    /// A writer on the stdin FIFO, so the container sees EOF only after CloseIO.
    var stdinKeep: Int32 = -1
    var stdinPump: Pump?
    var outputPumps: [Pump] = []
    /// FIFO fds held for the life of the process (readers that keep writers from EPIPE).
    var held: [Int32] = []
    var stdinFifo: Int32 = -1
    /// With a terminal, where the master's output goes.
    var terminalSink: (Sink, () -> Void)?
    var logger: pid_t = 0
    var closed = false

    /// Output a log file could not take (stream, bytes lost so far, why).
    public var onLoss: ((String, Int, String) -> Void)?

    init(loop: EventLoop, terminal: Bool) {
        self.loop = loop
        self.terminal = terminal
    }

    /// Opens everything for the process: nothing here blocks (FIFOs are opened reader first).
    public static func make(
        loop: EventLoop, stdin: String, stdout: String, stderr: String, terminal: Bool,
        containerID: String, namespace: String
    ) throws -> ProcessIO {
        let io = ProcessIO(loop: loop, terminal: terminal)
        do {
            try io.setup(stdin: stdin, stdout: stdout, stderr: stderr, containerID: containerID, namespace: namespace)
        } catch {
            io.closeAll()
            throw error
        }
        return io
    }

    func devNull(_ flags: Int32) throws -> Int32 { try FS.open("/dev/null", flags | O_CLOEXEC) }

    func setup(stdin: String, stdout: String, stderr: String, containerID: String, namespace: String) throws {
        let out = try withContext("stdout") { try LogTarget.parse(stdout) }
        var err = try withContext("stderr") { try LogTarget.parse(stderr) }
        // file:// and binary:// take both streams (containerd's log URI rule).
        switch out {
        case .file, .binary: err = .none;
        default: break
        }

        var stdio: [Int32] = [-1, -1, -1]
        if !stdin.isEmpty {
            stdinFifo = try withContext("stdin") { try FS.open(stdin, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
            stdinKeep = try withContext("stdin") { try FS.open(stdin, O_WRONLY | O_NONBLOCK | O_CLOEXEC) }
        }
        if terminal {
            let (a, b) = try Sys.socketpair(seqpacket: false)
            consoleOurs = a; consoleTheirs = b
            for i in 0..<3 { stdio[i] = try devNull(O_RDWR) }
            childStdio = stdio
            terminalSink = try makeSink(out, name: "stdout", containerID: containerID, namespace: namespace, forTerminal: true)
            return
        }
        if stdinFifo >= 0 {
            let p = try Sys.pipe()
            stdio[0] = p.read
            let pump = Pump(loop: loop, name: "stdin", src: stdinFifo, sink: .fd(p.write), dropWhenFull: false, cap: 1 << 20)
            pump.onDone = { close(p.write) }
            stdinFifo = -1  // the pump owns it now
            stdinPump = pump
        } else {
            stdio[0] = try devNull(O_RDONLY)
        }
        childStdio = stdio
        switch out {
        case .binary(let path, let args):
            let o = try Sys.pipe(), e = try Sys.pipe()
            childStdio[1] = o.write; childStdio[2] = e.write
            do { logger = try startLogger(path: path, args: args, stdout: o.read, stderr: e.read, containerID: containerID, namespace: namespace) } catch {
                close(o.read); close(e.read)
                throw error
            }
            close(o.read); close(e.read)
        case .file(let path, let maxSize, let maxFiles):
            let log = try openLog(path: path, maxSize: maxSize, maxFiles: maxFiles)
            for (i, name) in [(1, "stdout"), (2, "stderr")] {
                let p = try Sys.pipe()
                childStdio[i] = p.write
                let pump = Pump(loop: loop, name: name, src: p.read, sink: .log(log))
                pump.onLoss = { [weak self] n, why in self?.onLoss?(name, n, why) }
                outputPumps.append(pump)
            }
        default:
            for (i, target, name) in [(1, out, "stdout"), (2, err, "stderr")] {
                guard case .fifo(let path) = target else { childStdio[i] = try devNull(O_WRONLY); continue }
                let (sink, done) = try fifoSink(path, name: name)
                let p = try Sys.pipe()
                childStdio[i] = p.write
                let pump = Pump(loop: loop, name: name, src: p.read, sink: sink)
                pump.onDone = done
                outputPumps.append(pump)
            }
        }
    }

    func openLog(path: String, maxSize: Int?, maxFiles: Int) throws -> RotatingLog {
        try withContext("log uri file://\(path)") {
            try FS.mkdirAll(FS.dirname(path), mode: 0o755)
            return try RotatingLog(path: path, maxSize: maxSize, maxFiles: maxFiles)
        }
    }

    /// A FIFO opened for writing without blocking: a reader of our own first (held, so writes
    /// never fail while the client is away), then the writer. Closing the writer gives the
    /// client EOF.
    func fifoSink(_ path: String, name: String) throws -> (Sink, () -> Void) {
        let r = try withContext(name) { try FS.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        let w: Int32
        do { w = try withContext(name) { try FS.open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) } } catch { close(r); throw error }
        held.append(r)
        return (.fd(w), { close(w) })
    }

    func makeSink(
        _ target: LogTarget, name: String, containerID: String, namespace: String,
        forTerminal: Bool
    ) throws -> (Sink, () -> Void)? {
        switch target {
        case .fifo(let path): return try fifoSink(path, name: name)
        case .file(let path, let maxSize, let maxFiles):
            return (.log(try openLog(path: path, maxSize: maxSize, maxFiles: maxFiles)), {})
        case .binary(let path, let args):
            let o = try Sys.pipe(), e = try Sys.pipe()
            defer { close(o.read); close(e.read); close(e.write) }
            logger = try startLogger(path: path, args: args, stdout: o.read, stderr: e.read, containerID: containerID, namespace: namespace)
            return (.fd(o.write), { close(o.write) })
        case .none: return nil
        }
    }

    /// containerd's binary logger protocol: fd 3 = stdout, fd 4 = stderr, fd 5 = a pipe the
    /// logger closes (or writes to) once it is ready; argv = the URI's query as key value pairs.
    func startLogger(
        path: String, args: [String: String], stdout: Int32, stderr: Int32, containerID: String,
        namespace: String
    ) throws -> pid_t {
        let ready = try Sys.pipe()
        var argv = [path]
        for (k, v) in args.sorted(by: { $0.key < $1.key }) { argv += [k, v] }
        var env: [String] = []
        var ep = environ
        while let p = ep.pointee { env.append(String(cString: p)); ep += 1 }
        env =
            env.filter { !$0.hasPrefix("CONTAINER_ID=") && !$0.hasPrefix("CONTAINER_NAMESPACE=") }
            + ["CONTAINER_ID=\(containerID)", "CONTAINER_NAMESPACE=\(namespace)"]
        let cargv = CStringArray(argv), cenv = CStringArray(env)
        defer { cargv.free(); cenv.free() }
        let null = try devNull(O_RDWR)
        defer { close(null) }
        let pid = fork()
        if pid < 0 { close(ready.read); close(ready.write); throw SkiffError.sys("fork", "logger \(path)") }
        if pid == 0 {
            _ = setsid()
            // Move the three fds above 5 first so no dup2 clobbers another.
            let a = skiff_fcntl_dupfd(stdout, 10), b = skiff_fcntl_dupfd(stderr, 10), c = skiff_fcntl_dupfd(ready.write, 10)
            if a < 0 || b < 0 || c < 0 || !Sys.installStdio([null, null, null]) || dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(c, 5) < 0 { _exit(126) }
            _ = skiff_close_range(6, UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
            resetSignalsForExec()
            execve(path, cargv.pointers, cenv.pointers)
            _exit(127)
        }
        close(ready.write)
        defer { close(ready.read) }
        // Wait (bounded) for the logger to say it is ready; a logger that dies is an error.
        var pfd = pollfd(fd: ready.read, events: Int16(POLLIN), revents: 0)
        let deadline = monotonicNanos() + 10_000_000_000
        while monotonicNanos() < deadline {
            let r = poll(&pfd, 1, 100)
            if r > 0 { break }
            var st: Int32 = 0
            if waitpid(pid, &st, WNOHANG) == pid {
                throw SkiffError.msg("logger \(quote(path)) exited before it was ready (status \(exitCode(fromWaitStatus: st)))")
            }
        }
        var st: Int32 = 0
        if waitpid(pid, &st, WNOHANG) == pid && st != 0 {
            throw SkiffError.msg("logger \(quote(path)) failed to start (status \(exitCode(fromWaitStatus: st)))")
        }
        return pid
    }

    /// After the runtime started the process: the shim's copies of the child's fds go, the
    /// copies begin, and with a terminal the pty master arrives on the console socket.
    public func processStarted() throws {
        for fd in childStdio where fd >= 0 { close(fd) }
        childStdio = []
        if terminal {
            close(consoleTheirs); consoleTheirs = -1
            master = try Sys.recvFd(consoleOurs).fd
            close(consoleOurs); consoleOurs = -1
            Sys.setCloexec(master, true)
            if stdinFifo >= 0 {
                stdinPump = Pump(loop: loop, name: "stdin", src: stdinFifo, sink: .fd(master), dropWhenFull: false, cap: 1 << 20)
                stdinFifo = -1
            }
            if let (sink, done) = terminalSink {
                let p = Pump(loop: loop, name: "terminal", src: master, sink: sink, ownsSrc: false)
                p.onDone = done
                outputPumps.append(p)
            }
        }
        try stdinPump?.start()
        for p in outputPumps { try p.start() }
    }

    /// CloseIO: the container sees EOF on stdin once the client closed its side too.
    public func closeStdin() {
        if stdinKeep >= 0 { close(stdinKeep); stdinKeep = -1 }
    }

    /// The process exited: forward what it wrote before its exit is reported.
    public func drain() {
        for p in outputPumps { p.drainNow() }
    }

    /// Waits (bounded) until the output streams ended, as the runc shim does before delete.
    public func waitForOutput(timeoutMs: Int) {
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while outputPumps.contains(where: { !$0.finished }) && monotonicNanos() < deadline {
            for p in outputPumps where !p.finished {
                if !p.eof {
                    var pfd = pollfd(fd: p.src, events: Int16(POLLIN), revents: 0)
                    _ = poll(&pfd, 1, 10)
                    p.drainNow()
                } else {
                    p.flush()
                    if !p.finished { sleepMillis(5) }
                }
            }
        }
    }

    public func resize(width: UInt32, height: UInt32) throws {
        guard master >= 0 else { throw SkiffError.msg("process has no terminal") }
        if skiff_set_winsize(master, UInt16(truncatingIfNeeded: height), UInt16(truncatingIfNeeded: width)) != 0 {
            throw SkiffError.sys("resize pty", "console")
        }
    }

    /// Releases everything (delete). A binary logger gets SIGTERM, then SIGKILL after 12 s.
    public func closeAll() {
        guard !closed else { return }
        closed = true
        // The process's ends first: with them gone the pumps see EOF instead of waiting.
        for fd in childStdio where fd >= 0 { close(fd) }
        childStdio = []
        stdinPump?.stop()
        for p in outputPumps { p.stop() }
        for fd in held + [stdinKeep, stdinFifo, consoleOurs, consoleTheirs, master] where fd >= 0 { close(fd) }
        held = []
        if outputPumps.isEmpty, let (_, done) = terminalSink { done() }
        if logger > 0 {
            let pid = logger
            let pidfd = skiff_pidfd_open(pid, 0)
            kill(pid, SIGTERM)
            loop.after(ms: 12_000) {
                if pidfd >= 0 { _ = skiff_pidfd_send_signal(pidfd, SIGKILL); close(pidfd) }
            }
        }
    }
}

import Glibc
import CSkiffSys

/// argv/envp for execve, owned until `free()`. Built before fork so the child allocates nothing.
public struct CStringArray {
    public var pointers: [UnsafeMutablePointer<CChar>?]
    public init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }
    public func free() { for p in pointers { Glibc.free(p) } }
}

/// Resets what a child must not inherit from the runtime: blocked signals and ignored SIGPIPE.
public func resetSignalsForExec() {
    var set = sigset_t()
    sigemptyset(&set)
    sigprocmask(SIG_SETMASK, &set, nil)
    for s in 1..<32 where s != SIGKILL && s != SIGSTOP { signal(Int32(s), SIG_DFL) }
}

public struct SpawnResult {
    public var status: Int32
    public var output: [UInt8]
    public var timedOut: Bool
    public var outputText: String {
        String(decoding: output, as: UTF8.self).trimmingTrailingWhitespace()
    }
}

extension String {
    public func trimmingTrailingWhitespace() -> String {
        var s = self[...]
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}

public enum Spawn {
    /// Runs `path` with `args` (argv including argv[0]) and `env`, feeds `stdin`, collects combined
    /// stdout+stderr, and kills it after `timeout` seconds. A child that does not read its stdin
    /// does not break us: EPIPE is ignored.
    /// `newProcessGroup`: the child leads a process group of its own (everything it starts can
    /// be killed at once); `started` gets its pid before we wait for it.
    public static func run(
        path: String, args: [String], env: [String], stdin: [UInt8],
        timeout: Int? = nil, cwd: String? = nil, cwdFd: Int32 = -1, newProcessGroup: Bool = false,
        started: (pid_t) -> Void = { _ in }
    ) throws -> SpawnResult {
        let inPipe = try Sys.pipe()
        let outPipe = try Sys.pipe()
        let errPipe = try Sys.pipe()
        let argv = CStringArray(args.isEmpty ? [path] : args)
        let envp = CStringArray(env)
        let dir = CStringArray(cwd.map { [$0] } ?? [])
        defer { argv.free(); envp.free(); dir.free() }
        let pid = fork()
        if pid < 0 {
            for fd in [inPipe.read, inPipe.write, outPipe.read, outPipe.write, errPipe.read, errPipe.write] { close(fd) }
            throw SkiffError.sys("fork", path)
        }
        if pid == 0 {
            if newProcessGroup {
                _ = setpgid(0, 0)
                // Dies with us too (a runtime killed with SIGKILL cannot clean up after it).
                _ = skiff_prctl(SKIFF_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
            }
            if cwdFd >= 0 && fchdir(cwdFd) != 0 {
                var e = errno
                _ = Glibc.write(errPipe.write, &e, 4)
                _exit(127)
            }
            if let d = dir.pointers.first ?? nil, chdir(d) != 0 {
                var e = errno
                _ = Glibc.write(errPipe.write, &e, 4)
                _exit(127)
            }
            dup2(inPipe.read, 0)
            dup2(outPipe.write, 1)
            dup2(outPipe.write, 2)
            // Only stdio: whatever our caller left open is not the hook's to keep.
            _ = skiff_close_range(3, UInt32.max, SKIFF_CLOSE_RANGE_CLOEXEC)
            Sys.setCloexec(errPipe.write, true)
            resetSignalsForExec()
            execve(path, argv.pointers, envp.pointers)
            var e = errno
            _ = Glibc.write(errPipe.write, &e, 4)
            _exit(127)
        }
        if newProcessGroup { _ = setpgid(pid, pid) }  // either side may win the race; both set it
        started(pid)
        close(inPipe.read); close(outPipe.write); close(errPipe.write)
        // stdin: best effort; a hook may exit without reading.
        _ = try? FS.writeAll(fd: inPipe.write, stdin)
        close(inPipe.write)

        // Watch the hook itself too: a hook that leaves a daemon holding its stdout must not
        // keep us waiting for EOF.
        let pidfd = skiff_pidfd_open(pid, 0)
        defer { if pidfd >= 0 { close(pidfd) } }
        var output: [UInt8] = []
        var timedOut = false
        var exited = false
        // Saturating: a timeout of 2^35 s is as good as none, not an overflow trap.
        let deadline = timeout.map { t -> UInt64 in
            let (ns, o1) = UInt64(t).multipliedReportingOverflow(by: 1_000_000_000)
            let (d, o2) = monotonicNanos().addingReportingOverflow(ns)
            return o1 || o2 ? UInt64.max : d
        }
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            var pfds = [
                pollfd(fd: outPipe.read, events: Int16(POLLIN), revents: 0),
                pollfd(fd: exited ? -1 : pidfd, events: Int16(POLLIN), revents: 0)
            ]
            var wait: Int32 = -1
            if exited {
                wait = 50  // drain what the hook wrote, not what a leftover daemon might
            } else if let deadline {
                let now = monotonicNanos()
                if now >= deadline { timedOut = true; break }
                wait = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            }
            let r = poll(&pfds, 2, wait)
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { if exited { break }; continue }
            if pfds[1].revents != 0 { exited = true }
            if pfds[0].revents == 0 { continue }
            let n = buf.withUnsafeMutableBytes { Glibc.read(outPipe.read, $0.baseAddress, $0.count) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
            if output.count < 1 << 20 { output.append(contentsOf: buf[0..<n]) }
        }
        close(outPipe.read)
        if timedOut { kill(newProcessGroup ? -pid : pid, SIGKILL) }
        let st = Sys.wait(pid).status
        var execErr: Int32 = 0
        let n = Glibc.read(errPipe.read, &execErr, 4)
        close(errPipe.read)
        if n == 4 { throw SkiffError("exec", path, errno: execErr) }
        return SpawnResult(status: st, output: output, timedOut: timedOut)
    }
}

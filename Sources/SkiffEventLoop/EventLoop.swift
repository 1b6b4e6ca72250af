import Glibc
import CSkiffSys
import SkiffSys

/// A single-threaded epoll loop: fds with callbacks, plus one-shot timers. The shim runs
/// everything on it.
public final class EventLoop {
    let epfd: Int32
    var handlers: [Int32: (UInt32) -> Void] = [:]
    var timers: [(deadline: UInt64, seq: UInt64, fire: () -> Void)] = []
    var timerSeq: UInt64 = 0
    public var stopped = false

    public init() throws {
        epfd = skiff_epoll_create()
        if epfd < 0 { throw SkiffError.sys("epoll_create1") }
    }

    deinit { close(epfd) }

    public func add(_ fd: Int32, events: UInt32 = SKIFF_EPOLLIN, _ handler: @escaping (UInt32) -> Void) throws {
        if skiff_epoll_ctl(epfd, SKIFF_EPOLL_CTL_ADD, fd, events) != 0 { throw SkiffError.sys("epoll_ctl add", "fd \(fd)") }
        handlers[fd] = handler
    }

    public func modify(_ fd: Int32, events: UInt32) {
        _ = skiff_epoll_ctl(epfd, SKIFF_EPOLL_CTL_MOD, fd, events)
    }

    public func remove(_ fd: Int32) {
        _ = skiff_epoll_ctl(epfd, SKIFF_EPOLL_CTL_DEL, fd, 0)
        handlers[fd] = nil
    }

    /// Runs `fire` once, on the loop, after `ms` milliseconds.
    public func after(ms: Int, _ fire: @escaping () -> Void) {
        timerSeq += 1
        timers.append((monotonicNanos() + UInt64(max(ms, 0)) * 1_000_000, timerSeq, fire))
        timers.sort { ($0.deadline, $0.seq) < ($1.deadline, $1.seq) }
    }

    /// One wait; returns the number of fd events and timers handled (0 on timeout).
    @discardableResult
    public func runOnce(timeoutMs: Int32 = -1) -> Int {
        var timeout = timeoutMs
        if let first = timers.first {
            let now = monotonicNanos()
            let due = first.deadline > now ? Int32(min((first.deadline - now + 999_999) / 1_000_000, 60_000)) : 0
            timeout = timeout < 0 ? due : min(timeout, due)
        }
        var fds = [Int32](repeating: 0, count: 64)
        var evs = [UInt32](repeating: 0, count: 64)
        let n = max(skiff_epoll_wait(epfd, &fds, &evs, 64, timeout), 0)
        for i in 0..<Int(n) { handlers[fds[i]]?(evs[i]) }
        var fired = 0
        let now = monotonicNanos()
        while let first = timers.first, first.deadline <= now {
            timers.removeFirst()
            first.fire()
            fired += 1
        }
        return Int(n) + fired
    }

    /// Sleeps until an fd is ready, after releasing `trim`'s pages and free heap (idle daemons).
    /// Timers must not be pending: the sleep has no timeout.
    public func sleepReleasingMemory(_ trim: IdleTrim) {
        trim.addrs.withUnsafeBufferPointer { a in
            trim.lens.withUnsafeBufferPointer { l in
                _ = skiff_release_and_wait(epfd, a.baseAddress, l.baseAddress, Int32(a.count))
            }
        }
    }

    public var hasTimers: Bool { !timers.isEmpty }

    public func run() {
        while !stopped { runOnce() }
    }
}

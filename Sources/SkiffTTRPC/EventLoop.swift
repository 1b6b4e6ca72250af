import Glibc
import CSkiffSys
import SkiffSys

/// A single-threaded epoll loop: fds with callbacks. The shim runs everything on it.
public final class EventLoop {
    let epfd: Int32
    var handlers: [Int32: (UInt32) -> Void] = [:]
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

    /// One wait; returns the number of events handled (0 on timeout).
    @discardableResult
    public func runOnce(timeoutMs: Int32 = -1) -> Int {
        var fds = [Int32](repeating: 0, count: 64)
        var evs = [UInt32](repeating: 0, count: 64)
        let n = skiff_epoll_wait(epfd, &fds, &evs, 64, timeoutMs)
        if n <= 0 { return 0 }
        for i in 0..<Int(n) { handlers[fds[i]]?(evs[i]) }
        return Int(n)
    }

    public func run() {
        while !stopped { runOnce() }
    }
}

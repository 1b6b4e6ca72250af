import Glibc
import SkiffSys
import SkiffTTRPC
import SkiffWire

/// Events to containerd over ttrpc (TTRPC_ADDRESS). Undelivered events stay queued, in order,
/// and are retried every second on the loop.
public final class ContainerdEventSink: EventSink {
    let publisher: EventPublisher
    let loop: EventLoop
    var retrying = false

    public init(address: String, namespace: String, loop: EventLoop) {
        publisher = EventPublisher(address: address, namespace: namespace)
        self.loop = loop
    }

    public func publish<M: TaskEventMessage>(_ event: M) {
        do { try publisher.publish(event) } catch {
            Logger.shared.error("publish \(M.protoName): \(error)")
        }
        scheduleRetry()
    }

    func scheduleRetry() {
        guard !publisher.queue.isEmpty, !retrying else { return }
        retrying = true
        loop.after(ms: 1000) { [weak self] in
            guard let self else { return }
            self.retrying = false
            self.publisher.flush()
            self.scheduleRetry()
        }
    }
}

/// No one to tell (no TTRPC_ADDRESS): events only go to the shim's debug log.
public final class LogEventSink: EventSink {
    public init() {}
    public func publish<M: TaskEventMessage>(_ event: M) {
        Logger.shared.debug("event \(M.protoName)")
    }
}

import Glibc
import SkiffSys
import SkiffTTRPC
import SkiffWire
import SkiffEventLoop

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

/// The daemonless manager's sink: one JSON line per event appended to a file
/// (`SKIFF_EVENTS_FILE`), which `skiffctl events` reads.
public final class FileEventSink: EventSink {
    let path: String
    let namespace: String

    public init(path: String, namespace: String) {
        self.path = path
        self.namespace = namespace
    }

    public func publish<M: TaskEventMessage>(_ event: M) {
        let now = TaskEvents.now()
        var fields: [String] = []
        for child in Mirror(reflecting: event).children {
            guard let label = child.label else { continue }
            let value: String?
            switch child.value {
            case let s as String: value = s.isEmpty ? nil : jsonString(s)
            case let n as UInt32: value = n == 0 ? nil : String(n)
            case let b as Bool: value = b ? "true" : nil
            case let t as ProtoTimestamp?: value = t.map { "\"\(rfc3339(timespec(tv_sec: Int($0.seconds), tv_nsec: Int($0.nanos))))\"" }
            default: value = nil
            }
            if let value { fields.append(jsonString(label) + ":" + value) }
        }
        let line =
            "{\"timestamp\":\"\(rfc3339(timespec(tv_sec: Int(now.seconds), tv_nsec: Int(now.nanos))))\",\"namespace\":\(jsonString(namespace)),"
            + "\"topic\":\(jsonString(TaskEvents.topic(for: M.protoName) ?? M.protoName)),\"event\":{\(fields.joined(separator: ","))}}\n"
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { Logger.shared.error("events file \(quote(path)): \(String(cString: strerror(errno)))"); return }
        _ = try? FS.writeAll(fd: fd, line)
        close(fd)
    }
}

import Glibc
import SkiffSys
import SkiffWire

/// An event message containerd knows by its bare type name.
public protocol TaskEventMessage: ProtoMessage {
    static var protoName: String { get }
}
extension TaskCreate: TaskEventMessage {}
extension TaskStart: TaskEventMessage {}
extension TaskExit: TaskEventMessage {}
extension TaskDelete: TaskEventMessage {}
extension TaskExecAdded: TaskEventMessage {}
extension TaskExecStarted: TaskEventMessage {}
extension TaskOOM: TaskEventMessage {}
extension TaskPaused: TaskEventMessage {}
extension TaskResumed: TaskEventMessage {}

/// Task events as containerd expects them: a ForwardRequest envelope on
/// containerd.services.events.ttrpc.v1.Events/Forward, the event as an Any with the bare type
/// name, a non-zero timestamp, and the namespace in the ttrpc metadata too.
public enum TaskEvents {
    public static let service = "containerd.services.events.ttrpc.v1.Events"
    /// Go's zero time, which containerd 1.6 expects for "not exited" (gogo non-nullable).
    public static let zeroTime = ProtoTimestamp(seconds: -62135596800, nanos: 0)

    public static func now() -> ProtoTimestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ProtoTimestamp(seconds: Int64(ts.tv_sec), nanos: Int32(ts.tv_nsec))
    }

    /// Topic for each event message, from containerd's runtime/events.go.
    public static func topic(for typeName: String) -> String? {
        [
            "containerd.events.TaskCreate": "/tasks/create", "containerd.events.TaskStart": "/tasks/start",
            "containerd.events.TaskExit": "/tasks/exit", "containerd.events.TaskDelete": "/tasks/delete",
            "containerd.events.TaskExecAdded": "/tasks/exec-added", "containerd.events.TaskExecStarted": "/tasks/exec-started",
            "containerd.events.TaskOOM": "/tasks/oom", "containerd.events.TaskPaused": "/tasks/paused",
            "containerd.events.TaskResumed": "/tasks/resumed", "containerd.events.TaskCheckpointed": "/tasks/checkpointed"
        ][typeName]
    }

    /// The ForwardRequest bytes for one event.
    public static func forward<M: TaskEventMessage>(_ event: M, namespace: String) throws -> [UInt8] {
        guard let topic = topic(for: M.protoName) else { throw SkiffError.msg("events: no topic for \(M.protoName)") }
        var env = Envelope()
        env.timestamp = now()
        env.namespace = namespace
        env.topic = topic
        env.event = ProtoAny(typeURL: M.protoName, value: event.protoBytes())
        var req = ForwardRequest()
        req.envelope = env
        return req.protoBytes()
    }
}

/// Publishes events in order; what cannot be delivered now stays queued (bounded) and is retried
/// on the next publish or flush, reconnecting as needed.
public final class EventPublisher {
    let address: String
    let namespace: String
    var client: TTRPCClient?
    public private(set) var queue: [[UInt8]] = []
    public let limit = 2048

    public init(address: String, namespace: String) {
        self.address = address
        self.namespace = namespace
    }

    public func publish<M: TaskEventMessage>(_ event: M) throws {
        if queue.count >= limit { queue.removeFirst() }
        queue.append(try TaskEvents.forward(event, namespace: namespace))
        flush()
    }

    /// Sends what is queued; stops at the first failure (order is kept).
    public func flush() {
        while let next = queue.first {
            do {
                if client == nil { client = try TTRPCClient.connect(address) }
                _ = try client!.call(
                    service: TaskEvents.service, method: "Forward", payload: next,
                    metadata: ["containerd-namespace-ttrpc": namespace], timeoutMs: 5000)
                queue.removeFirst()
            } catch {
                client = nil
                return
            }
        }
    }
}

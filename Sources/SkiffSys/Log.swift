import Glibc
import SkiffJSON

/// runc-compatible logging: `--log FILE` (O_APPEND|O_SYNC) and `--log-format text|json`.
/// JSON records are logrus-shaped `{"level":..,"msg":..,"time":RFC3339}` because containerd's runc
/// shim decodes them as a stream and podman reads the last one.
public final class Logger: @unchecked Sendable {
    public enum Format { case text, json }
    public nonisolated(unsafe) static var shared = Logger()

    public var fd: Int32 = 2
    public var format: Format = .text
    public var debugEnabled = false
    /// True when log records go to a file rather than stderr.
    public var toFile = false

    public init() {}

    public func open(path: String) throws {
        let f = try FS.open(path, O_CREAT | O_WRONLY | O_APPEND | O_SYNC, mode: 0o644)
        fd = f
        toFile = true
    }

    /// logrus's time (RFC 3339, whole seconds), as runc writes it.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        ts.tv_nsec = 0
        return rfc3339(ts)
    }

    public func log(_ level: String, _ msg: String) {
        var line: String
        switch format {
        case .json:
            line = "{\"level\":\(jsonString(level)),\"msg\":\(jsonString(msg)),\"time\":\(jsonString(Logger.now()))}\n"
        case .text:
            line = "time=\"\(Logger.now())\" level=\(level) msg=\(quote(msg))\n"
        }
        // On a terminal, errors and warnings read as sentences; debug keeps runc's logrus shape.
        if !toFile && format == .text && level != "debug" { line = level == "error" ? msg + "\n" : "\(level): \(msg)\n" }
        try? FS.writeAll(fd: fd, line)
    }

    public func debug(_ m: @autoclosure () -> String) { if debugEnabled { log("debug", m()) } }
    public func warn(_ m: String) { log("warning", m) }
    public func error(_ m: String) { log("error", m) }
}

/// A JSON string literal (quotes included), for hand-written records on hot paths.
public func jsonString(_ s: String) -> String {
    var out = ""
    JSONValue.escape(s, into: &out)
    return out
}

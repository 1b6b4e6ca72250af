import SkiffJSON
import Glibc

/// The one error type of the runtime path. It renders as crun/runc-style text:
/// `<context>: <op> "<object>": <errno text> (<hint>)`, e.g.
/// `create "web": exec "/app/start.sh": no such file or directory`.
public struct SkiffError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of failure this is, for callers that act on it (the shim's ttrpc status codes,
    /// `delete --force` of a container that is gone), set where the error is raised; the text
    /// is for people. containerd's errdefs are the model.
    public enum Kind: String, Sendable {
        case notExist, exists, notRunning, paused, invalid, unsupported, permission
    }

    public var op: String
    /// Set where raised (nil: not one a caller acts on; see `effectiveKind`).
    public var kind: Kind?

    /// `kind`, or `.permission` for an EPERM/EACCES nobody classified.
    public var effectiveKind: Kind? { kind ?? (errno == EPERM || errno == EACCES ? .permission : nil) }
    public var object: String?
    public var errno: Int32?
    public var detail: String?
    public var hint: String?
    public var context: [String] = []

    public init(_ op: String, _ object: String? = nil, errno: Int32? = nil, detail: String? = nil, hint: String? = nil) {
        self.op = op
        self.object = object
        self.errno = errno
        self.detail = detail
        self.hint = hint
    }

    /// An error from the current `errno`.
    public static func sys(_ op: String, _ object: String? = nil, hint: String? = nil) -> SkiffError {
        SkiffError(op, object, errno: Glibc.errno, hint: hint)
    }

    /// A plain message without errno (validation, lifecycle).
    public static func msg(_ text: String, hint: String? = nil) -> SkiffError {
        var e = SkiffError(text)
        e.hint = hint
        return e
    }

    /// A plain message of a known kind.
    public static func msg(_ kind: Kind, _ text: String, hint: String? = nil) -> SkiffError {
        var e = msg(text, hint: hint)
        e.kind = kind
        return e
    }

    public func wrapped(_ ctx: String) -> SkiffError {
        var e = self
        e.context.insert(ctx, at: 0)
        return e
    }

    public var description: String {
        var parts = context
        var head = op
        if let object { head += " \(quote(object))" }
        var tail: [String] = []
        if let detail { tail.append(detail) }
        if let errno { tail.append(errnoText(errno)) }
        if !tail.isEmpty { head += ": " + tail.joined(separator: ": ") }
        parts.append(head)
        var s = parts.joined(separator: ": ")
        if let hint { s += " (hint: \(hint))" }
        return s
    }
}

/// Go-style errno text: lower-case first letter, as runc prints it.
public func errnoText(_ e: Int32) -> String {
    guard let p = strerror(e) else { return "errno \(e)" }
    var s = String(cString: p)
    if let f = s.first, f.isUppercase { s = f.lowercased() + s.dropFirst() }
    return s
}

/// A string quoted as Go's %q does (runc's messages use it): JSON's escapes, but `\xNN` for the
/// control characters without a short form.
public func quote(_ s: String) -> String {
    var out = ""
    JSONValue.escape(s, into: &out, goStyle: true)
    return out
}

/// Wraps any error thrown by `body` with a context prefix.
@inline(__always)
public func withContext<T>(_ ctx: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as SkiffError { throw e.wrapped(ctx()) }
}

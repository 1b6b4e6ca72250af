import SkiffJSON

// config.json and state.json read member by member, for the documents every command decodes.
// Codable instantiates a keyed container, its box class and their witness tables for each model
// type at run time, which was a third of `run`'s own CPU; this reads the same members into the
// same model, with the same errors (JSONTests and SpecReaderTests hold the two paths equal).
// Parts that few configs carry (resources, seccomp, devices...) still go through Codable.

/// One JSON object's members. Errors carry the path below this object; each level puts its
/// own key in front (`within`), so a path is only built when something is wrong.
struct Members {
    let members: [(String, JSONValue)]

    init(_ v: JSONValue) throws {
        guard case .object(let m) = v else { throw JSONDecodeError.wrongType(path: [], expected: "an object", found: v.kind) }
        members = m
    }

    /// The last member named `key` (a repeated key means its last value, as with Codable).
    func find(_ key: String) -> JSONValue? { JSONValue.member(key, in: members) }

    /// A required member read by `read`: absent is "missing", null is the wrong type.
    func required<T>(_ key: String, _ expected: String, _ read: (JSONValue) throws -> T) throws -> T {
        guard let v = find(key) else { throw JSONDecodeError.missing(path: [key]) }
        if v.isNull { throw JSONDecodeError.wrongType(path: [key], expected: expected, found: "null") }
        return try within(key) { try read(v) }
    }

    /// An optional member: absent or null is nil.
    func optional<T>(_ key: String, _ read: (JSONValue) throws -> T) throws -> T? {
        guard let v = find(key), !v.isNull else { return nil }
        return try within(key) { try read(v) }
    }

    func string(_ key: String) throws -> String { try required(key, "a string", Members.string) }
    func string(ifPresent key: String) throws -> String? { try optional(key, Members.string) }
    func bool(ifPresent key: String) throws -> Bool? { try optional(key, Members.bool) }
    func strings(ifPresent key: String) throws -> [String]? { try optional(key) { try Members.array($0, Members.string) } }

    static func string(_ v: JSONValue) throws -> String {
        guard case .string(let s) = v else { throw JSONDecodeError.wrongType(path: [], expected: "a string", found: v.kind) }
        return s
    }

    static func bool(_ v: JSONValue) throws -> Bool {
        guard case .bool(let b) = v else { throw JSONDecodeError.wrongType(path: [], expected: "a boolean", found: v.kind) }
        return b
    }

    static func number<T: FixedWidthInteger>(_ v: JSONValue, _ t: T.Type) throws -> T {
        guard case .number(let n) = v else { throw JSONDecodeError.wrongType(path: [], expected: "a number", found: v.kind) }
        guard let x = T(n) else { throw JSONDecodeError.invalid(path: [], message: "number \(n) does not fit \(T.self)") }
        return x
    }

    static func array<T>(_ v: JSONValue, _ read: (JSONValue) throws -> T) throws -> [T] {
        guard case .array(let items) = v else { throw JSONDecodeError.wrongType(path: [], expected: "an array", found: v.kind) }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do { out.append(try read(item)) } catch let e as JSONDecodeError { throw e.prefixed("[\(i)]") }
        }
        return out
    }

    /// A key given twice means its last value; an earlier one is not read at all (as Codable's
    /// Dictionary decodes it).
    static func stringMap(_ v: JSONValue) throws -> [String: String] {
        let o = try Members(v)
        var last: [String: JSONValue] = [:]
        last.reserveCapacity(o.members.count)
        for (k, x) in o.members { last[k] = x }
        var out: [String: String] = [:]
        out.reserveCapacity(last.count)
        for (k, _) in o.members where out[k] == nil { out[k] = try within(k) { try string(last[k]!) } }
        return out
    }

    /// A member whose type stays on Codable.
    static func codable<T: Decodable>(_ t: T.Type) -> (JSONValue) throws -> T {
        { try JSONCoder.decode(t, value: $0) }
    }
}

func within<T>(_ key: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as JSONDecodeError { throw e.prefixed(key) }
}

extension Spec {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        ociVersion = try o.string("ociVersion")
        process = try o.optional("process", Process.init(reading:))
        root = try o.optional("root", Root.init(reading:))
        hostname = try o.string(ifPresent: "hostname")
        domainname = try o.string(ifPresent: "domainname")
        mounts = try o.optional("mounts") { try Members.array($0, Mount.init(reading:)) }
        hooks = try o.optional("hooks", Hooks.init(reading:))
        annotations = try o.optional("annotations", Members.stringMap)
        linux = try o.optional("linux", Linux.init(reading:))
    }
}

extension Process {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        // In Codable's order, so that of two wrong members the same one is reported.
        let terminal = try o.bool(ifPresent: "terminal")
        let consoleSize = try o.optional("consoleSize", ConsoleSize.init(reading:))
        self.init(user: try o.optional("user", User.init(reading:)) ?? User(), cwd: "/")
        self.terminal = terminal
        self.consoleSize = consoleSize
        args = try o.strings(ifPresent: "args")
        commandLine = try o.string(ifPresent: "commandLine")
        env = try o.strings(ifPresent: "env")
        cwd = try o.string("cwd")
        capabilities = try o.optional("capabilities", Capabilities.init(reading:))
        rlimits = try o.optional("rlimits") { try Members.array($0, Rlimit.init(reading:)) }
        noNewPrivileges = try o.bool(ifPresent: "noNewPrivileges")
        apparmorProfile = try o.string(ifPresent: "apparmorProfile")
        oomScoreAdj = try o.optional("oomScoreAdj") { try Members.number($0, Int.self) }
        selinuxLabel = try o.string(ifPresent: "selinuxLabel")
    }
}

extension ConsoleSize {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        height = try o.required("height", "a number") { try Members.number($0, UInt16.self) }
        width = try o.required("width", "a number") { try Members.number($0, UInt16.self) }
    }
}

extension User {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init(
            uid: try o.required("uid", "a number") { try Members.number($0, UInt32.self) },
            gid: try o.required("gid", "a number") { try Members.number($0, UInt32.self) })
        umask = try o.optional("umask") { try Members.number($0, UInt32.self) }
        additionalGids = try o.optional("additionalGids") { try Members.array($0) { try Members.number($0, UInt32.self) } }
        username = try o.string(ifPresent: "username")
    }
}

extension Capabilities {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init()
        bounding = try o.strings(ifPresent: "bounding")
        effective = try o.strings(ifPresent: "effective")
        inheritable = try o.strings(ifPresent: "inheritable")
        permitted = try o.strings(ifPresent: "permitted")
        ambient = try o.strings(ifPresent: "ambient")
    }
}

extension Rlimit {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init(
            type: try o.string("type"), hard: try o.required("hard", "a number") { try Members.number($0, UInt64.self) },
            soft: try o.required("soft", "a number") { try Members.number($0, UInt64.self) })
    }
}

extension Root {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init(path: try o.string("path"), readonly: try o.bool(ifPresent: "readonly"))
    }
}

extension Mount {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init(
            destination: try o.string("destination"), type: try o.string(ifPresent: "type"), source: try o.string(ifPresent: "source"),
            options: try o.strings(ifPresent: "options"))
        uidMappings = try o.optional("uidMappings") { try Members.array($0, IDMapping.init(reading:)) }
        gidMappings = try o.optional("gidMappings") { try Members.array($0, IDMapping.init(reading:)) }
    }
}

extension IDMapping {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init(
            containerID: try o.required("containerID", "a number") { try Members.number($0, UInt32.self) },
            hostID: try o.required("hostID", "a number") { try Members.number($0, UInt32.self) },
            size: try o.required("size", "a number") { try Members.number($0, UInt32.self) })
    }
}

extension Hook {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        path = try o.string("path")
        args = try o.strings(ifPresent: "args")
        env = try o.strings(ifPresent: "env")
        timeout = try o.optional("timeout") { try Members.number($0, Int.self) }
    }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("path", .string(path))]
        if let args { m.append(("args", .array(args.map { .string($0) }))) }
        if let env { m.append(("env", .array(env.map { .string($0) }))) }
        if let timeout { m.append(("timeout", .number(String(timeout)))) }
        return .object(m)
    }
}

extension Hooks {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        func hooks(_ key: String) throws -> [Hook]? { try o.optional(key) { try Members.array($0, Hook.init(reading:)) } }
        prestart = try hooks("prestart")
        createRuntime = try hooks("createRuntime")
        createContainer = try hooks("createContainer")
        startContainer = try hooks("startContainer")
        poststart = try hooks("poststart")
        poststop = try hooks("poststop")
    }
}

extension Namespace {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        type = try o.string("type")
        path = try o.string(ifPresent: "path")
    }
}

extension Linux {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        self.init()
        uidMappings = try o.optional("uidMappings") { try Members.array($0, IDMapping.init(reading:)) }
        gidMappings = try o.optional("gidMappings") { try Members.array($0, IDMapping.init(reading:)) }
        timeOffsets = try o.optional("timeOffsets", Members.codable([String: TimeOffset].self))
        sysctl = try o.optional("sysctl", Members.stringMap)
        resources = try o.optional("resources", Members.codable(Resources.self))
        cgroupsPath = try o.string(ifPresent: "cgroupsPath")
        namespaces = try o.optional("namespaces") { try Members.array($0, Namespace.init(reading:)) }
        devices = try o.optional("devices", Members.codable([Device].self))
        seccomp = try o.optional("seccomp", Members.codable(Seccomp.self))
        rootfsPropagation = try o.string(ifPresent: "rootfsPropagation")
        maskedPaths = try o.strings(ifPresent: "maskedPaths")
        readonlyPaths = try o.strings(ifPresent: "readonlyPaths")
        mountLabel = try o.string(ifPresent: "mountLabel")
        personality = try o.optional("personality", Members.codable(Personality.self))
        intelRdt = try o.optional("intelRdt", Members.codable(IntelRdt.self))
        netDevices = try o.optional("netDevices", Members.codable([String: NetDevice].self))
    }
}

extension ExecConfig {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        process = try o.optional("process", Process.init(reading:))
        linux = try o.optional("linux") { l in
            let lo = try Members(l)
            return ExecLinux(
                namespaces: try lo.optional("namespaces") { try Members.array($0, Namespace.init(reading:)) },
                seccomp: try lo.optional("seccomp", Members.codable(Seccomp.self)))
        }
    }
}

extension ContainerRecord {
    init(reading v: JSONValue) throws {
        let o = try Members(v)
        func hooks(_ key: String) throws -> [Hook]? { try o.optional(key) { try Members.array($0, Hook.init(reading:)) } }
        self.init(
            id: try o.string("id"), ociVersion: try o.string("ociVersion"), bundle: try o.string("bundle"), rootfs: try o.string("rootfs"),
            pid: try o.required("pid", "a number") { try Members.number($0, Int32.self) },
            startTime: try o.required("startTime", "a number") { try Members.number($0, UInt64.self) },
            created: try o.string("created"), annotations: try o.optional("annotations", Members.stringMap),
            cgroupPath: try o.string(ifPresent: "cgroupPath"), poststart: try hooks("poststart"), poststop: try hooks("poststop"),
            started: try o.required("started", "a boolean", Members.bool),
            ownPidNamespace: try o.required("ownPidNamespace", "a boolean", Members.bool))
        namespacePaths = try o.optional("namespacePaths", Members.stringMap)
        useSystemdCgroup = try o.bool(ifPresent: "useSystemdCgroup")
        systemdUnit = try o.string(ifPresent: "systemdUnit")
        cgroupCreatedTop = try o.string(ifPresent: "cgroupCreatedTop")
        creatorPid = try o.optional("creatorPid") { try Members.number($0, Int32.self) }
        creatorStartTime = try o.optional("creatorStartTime") { try Members.number($0, UInt64.self) }
        netDevices = try o.optional("netDevices", Members.stringMap)
    }

    /// The record as Codable would encode it: declaration order, nil members left out,
    /// dictionaries sorted by key.
    var json: JSONValue {
        func map(_ d: [String: String]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }) }
        var m: [(String, JSONValue)] = [
            ("id", .string(id)), ("ociVersion", .string(ociVersion)), ("bundle", .string(bundle)), ("rootfs", .string(rootfs)),
            ("pid", .number(String(pid))), ("startTime", .number(String(startTime))), ("created", .string(created))
        ]
        if let annotations { m.append(("annotations", map(annotations))) }
        if let cgroupPath { m.append(("cgroupPath", .string(cgroupPath))) }
        if let poststart { m.append(("poststart", .array(poststart.map(\.json)))) }
        if let poststop { m.append(("poststop", .array(poststop.map(\.json)))) }
        m.append(("started", .bool(started)))
        m.append(("ownPidNamespace", .bool(ownPidNamespace)))
        if let namespacePaths { m.append(("namespacePaths", map(namespacePaths))) }
        if let useSystemdCgroup { m.append(("useSystemdCgroup", .bool(useSystemdCgroup))) }
        if let systemdUnit { m.append(("systemdUnit", .string(systemdUnit))) }
        if let cgroupCreatedTop { m.append(("cgroupCreatedTop", .string(cgroupCreatedTop))) }
        if let creatorPid { m.append(("creatorPid", .number(String(creatorPid)))) }
        if let creatorStartTime { m.append(("creatorStartTime", .number(String(creatorStartTime)))) }
        if let netDevices { m.append(("netDevices", map(netDevices))) }
        return .object(m)
    }
}

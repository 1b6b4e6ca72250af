// The OCI runtime-spec (v1.2) configuration model. Unknown fields are ignored (Codable's default),
// as the spec requires; validation lives in Validation.swift.

public struct Spec: Codable, Sendable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?

    /// The runtime-spec version this model follows (what `skiff spec` writes and --version says).
    public static let version = "1.2.0"

    public init(ociVersion: String = Spec.version) { self.ociVersion = ociVersion }
}

public struct Process: Codable, Sendable {
    public var terminal: Bool?
    public var consoleSize: ConsoleSize?
    public var user: User
    public var args: [String]?
    public var commandLine: String?
    public var env: [String]?
    public var cwd: String
    public var capabilities: Capabilities?
    public var rlimits: [Rlimit]?
    public var noNewPrivileges: Bool?
    public var apparmorProfile: String?
    public var oomScoreAdj: Int?
    public var selinuxLabel: String?

    public init(user: User = User(), args: [String]? = nil, env: [String]? = nil, cwd: String = "/") {
        self.user = user; self.args = args; self.env = env; self.cwd = cwd
    }

    /// `user` may be left out (a process.json for exec often is): uid and gid 0, as runc reads it.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        terminal = try c.decodeIfPresent(Bool.self, forKey: .terminal)
        consoleSize = try c.decodeIfPresent(ConsoleSize.self, forKey: .consoleSize)
        user = try c.decodeIfPresent(User.self, forKey: .user) ?? User()
        args = try c.decodeIfPresent([String].self, forKey: .args)
        commandLine = try c.decodeIfPresent(String.self, forKey: .commandLine)
        env = try c.decodeIfPresent([String].self, forKey: .env)
        cwd = try c.decode(String.self, forKey: .cwd)
        capabilities = try c.decodeIfPresent(Capabilities.self, forKey: .capabilities)
        rlimits = try c.decodeIfPresent([Rlimit].self, forKey: .rlimits)
        noNewPrivileges = try c.decodeIfPresent(Bool.self, forKey: .noNewPrivileges)
        apparmorProfile = try c.decodeIfPresent(String.self, forKey: .apparmorProfile)
        oomScoreAdj = try c.decodeIfPresent(Int.self, forKey: .oomScoreAdj)
        selinuxLabel = try c.decodeIfPresent(String.self, forKey: .selinuxLabel)
    }
}

public struct ConsoleSize: Codable, Sendable {
    public var height: UInt16
    public var width: UInt16
}

public struct User: Codable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var umask: UInt32?
    public var additionalGids: [UInt32]?
    public var username: String?
    public init(uid: UInt32 = 0, gid: UInt32 = 0) { self.uid = uid; self.gid = gid }
}

public struct Capabilities: Codable, Sendable {
    public var bounding: [String]?
    public var effective: [String]?
    public var inheritable: [String]?
    public var permitted: [String]?
    public var ambient: [String]?
    public init() {}
}

public struct Rlimit: Codable, Sendable {
    public var type: String
    public var hard: UInt64
    public var soft: UInt64
    public init(type: String, hard: UInt64, soft: UInt64) { self.type = type; self.hard = hard; self.soft = soft }
}

public struct Root: Codable, Sendable {
    public var path: String
    public var readonly: Bool?
    public init(path: String, readonly: Bool?) { self.path = path; self.readonly = readonly }
}

public struct Mount: Codable, Sendable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String]?
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    public init(destination: String, type: String?, source: String?, options: [String]?) {
        self.destination = destination; self.type = type; self.source = source; self.options = options
    }
}

public struct Hook: Codable, Sendable {
    public var path: String
    public var args: [String]?
    public var env: [String]?
    public var timeout: Int?
}

public struct Hooks: Codable, Sendable {
    public var prestart: [Hook]?
    public var createRuntime: [Hook]?
    public var createContainer: [Hook]?
    public var startContainer: [Hook]?
    public var poststart: [Hook]?
    public var poststop: [Hook]?
}

public struct IDMapping: Codable, Sendable, Equatable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32
    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID; self.hostID = hostID; self.size = size
    }
}

/// What `exec` reads of a container's stored config: the process (the template of an exec
/// without --process), the namespaces it joins and the seccomp filter it runs under. Decoding
/// only these skips the mounts, hooks and resources a whole config carries.
public struct ExecConfig: Decodable, Sendable {
    public var process: Process?
    public var linux: ExecLinux?

    public struct ExecLinux: Decodable, Sendable {
        public var namespaces: [Namespace]?
        public var seccomp: Seccomp?
    }
}

public struct Namespace: Codable, Sendable {
    public var type: String
    public var path: String?
    public init(type: String, path: String? = nil) { self.type = type; self.path = path }
}

public struct Device: Codable, Sendable {
    public var type: String
    public var path: String
    public var major: Int64?
    public var minor: Int64?
    public var fileMode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public init(type: String, path: String, major: Int64?, minor: Int64?, fileMode: UInt32?, uid: UInt32?, gid: UInt32?) {
        self.type = type; self.path = path; self.major = major; self.minor = minor
        self.fileMode = fileMode; self.uid = uid; self.gid = gid
    }
}

public struct TimeOffset: Codable, Sendable {
    public var secs: Int64?
    public var nanosecs: UInt32?
}

public struct Linux: Codable, Sendable {
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    public var timeOffsets: [String: TimeOffset]?
    public var sysctl: [String: String]?
    public var resources: Resources?
    public var cgroupsPath: String?
    public var namespaces: [Namespace]?
    public var devices: [Device]?
    public var seccomp: Seccomp?
    public var rootfsPropagation: String?
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?
    public var mountLabel: String?
    public var personality: Personality?
    /// Read to be refused when it asks for anything (see Validation): skiff has no resctrl support.
    public var intelRdt: IntelRdt?
    /// runtime-spec 1.2: host interfaces moved into the container's network namespace.
    public var netDevices: [String: NetDevice]?
    public init() {}
}

public struct NetDevice: Codable, Sendable {
    /// The name in the container (default: the host name).
    public var name: String?
}

/// Only whether it asks for anything: every member counts, the spec's later ones (`schemata`,
/// `enableMonitoring`) and any other a newer caller sends too, not only the ones known here (a
/// member a model left out was read as nothing asked). Nothing asked: null, false, an empty
/// schema or list; a closID, even empty, asks.
public struct IntelRdt: Codable, Sendable {
    public var asksForSomething = false

    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for k in c.allKeys where !(try c.decodeNil(forKey: k)) {
            if let b = try? c.decode(Bool.self, forKey: k) {
                if b { asksForSomething = true }
            } else if let s = try? c.decode(String.self, forKey: k) {
                if !s.isEmpty || k.stringValue == "closID" { asksForSomething = true }
            } else if let list = try? c.decode([String].self, forKey: k) {
                if !list.isEmpty { asksForSomething = true }
            } else {
                asksForSomething = true
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        if asksForSomething { try c.encode(true, forKey: Key(stringValue: "asksForSomething")) }
    }
}

public struct Personality: Codable, Sendable {
    public var domain: String
    public var flags: [String]?
}

// MARK: resources (applied in a later stage; modelled now so configs validate and round-trip)

public struct DeviceRule: Codable, Sendable {
    public var allow: Bool
    public var type: String?
    public var major: Int64?
    public var minor: Int64?
    public var access: String?
    public init(allow: Bool, type: String?, major: Int64?, minor: Int64?, access: String?) {
        self.allow = allow; self.type = type; self.major = major; self.minor = minor; self.access = access
    }
}

public struct Memory: Codable, Sendable {
    public var limit: Int64?
    public var reservation: Int64?
    public var swap: Int64?
    public var kernel: Int64?
    public var kernelTCP: Int64?
    public var swappiness: UInt64?
    public var disableOOMKiller: Bool?
    public var useHierarchy: Bool?
    public var checkBeforeUpdate: Bool?
    public init() {}
}

public struct CPU: Codable, Sendable {
    public var shares: UInt64?
    public var quota: Int64?
    public var burst: UInt64?
    public var period: UInt64?
    public var realtimeRuntime: Int64?
    public var realtimePeriod: UInt64?
    public var cpus: String?
    public var mems: String?
    public var idle: Int64?
    public init() {}
}

public struct Pids: Codable, Sendable {
    public var limit: Int64
    public init(limit: Int64) { self.limit = limit }
}

public struct WeightDevice: Codable, Sendable {
    public var major: Int64
    public var minor: Int64
    public var weight: UInt16?
    public var leafWeight: UInt16?
}

public struct ThrottleDevice: Codable, Sendable {
    public var major: Int64
    public var minor: Int64
    public var rate: UInt64
}

public struct BlockIO: Codable, Sendable {
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public var weightDevice: [WeightDevice]?
    public var throttleReadBpsDevice: [ThrottleDevice]?
    public var throttleWriteBpsDevice: [ThrottleDevice]?
    public var throttleReadIOPSDevice: [ThrottleDevice]?
    public var throttleWriteIOPSDevice: [ThrottleDevice]?
    public init() {}
}

public struct HugepageLimit: Codable, Sendable {
    public var pageSize: String
    public var limit: UInt64
}

public struct RdmaLimit: Codable, Sendable {
    public var hcaHandles: UInt32?
    public var hcaObjects: UInt32?
}

public struct Resources: Codable, Sendable {
    public var devices: [DeviceRule]?
    public var memory: Memory?
    public var cpu: CPU?
    public var pids: Pids?
    public var blockIO: BlockIO?
    public var hugepageLimits: [HugepageLimit]?
    public var rdma: [String: RdmaLimit]?
    public var unified: [String: String]?
    /// net_cls/net_prio: cgroup v1 only (kept to warn that it is ignored).
    public var network: NetworkResources?
    public init() {}
}

public struct NetworkResources: Codable, Sendable {
    public struct Priority: Codable, Sendable { public var name: String; public var priority: UInt32 }
    public var classID: UInt32?
    public var priorities: [Priority]?
}

// MARK: seccomp

public struct SeccompArg: Codable, Sendable {
    public var index: UInt32
    public var value: UInt64
    public var valueTwo: UInt64?
    public var op: String
}

public struct SyscallRule: Codable, Sendable {
    public var names: [String]
    public var action: String
    public var errnoRet: UInt32?
    public var args: [SeccompArg]?
}

public struct Seccomp: Codable, Sendable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var flags: [String]?
    public var listenerPath: String?
    public var listenerMetadata: String?
    public var syscalls: [SyscallRule]?
}

/// The spec's state (what `skiff state` prints and hooks read on stdin).
public struct OCIState: Codable, Sendable {
    public var ociVersion: String
    public var id: String
    public var status: String
    public var pid: Int32?
    public var bundle: String
    public var rootfs: String?
    public var created: String?
    public var annotations: [String: String]?
    public var owner: String?
    /// Skiff extension (state only): the container's cgroup counted OOM kills (memory.events).
    public var oomKilled: Bool?

    public init(
        ociVersion: String, id: String, status: String, pid: Int32?, bundle: String,
        rootfs: String? = nil, created: String? = nil, annotations: [String: String]? = nil, owner: String? = nil
    ) {
        self.ociVersion = ociVersion; self.id = id; self.status = status; self.pid = pid; self.bundle = bundle
        self.rootfs = rootfs; self.created = created; self.annotations = annotations; self.owner = owner
    }
}

/// What `state` and `list --format json` print, in runc's field order (runc's containerState;
/// hooks get the spec's State, OCIState).
public struct ContainerState: Encodable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: String
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var annotations: [String: String]?
    public var owner: String
    /// Skiff extension: the container's cgroup counted OOM kills.
    public var oomKilled: Bool?

    public init(_ s: OCIState, owner: String) {
        ociVersion = s.ociVersion; id = s.id; pid = s.pid ?? 0; status = s.status; bundle = s.bundle
        rootfs = s.rootfs ?? ""; created = s.created ?? ""; annotations = s.annotations; self.owner = owner; oomKilled = s.oomKilled
    }
}

/// The runtime's private record in `<root>/<id>/state.json`. Written atomically.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var ociVersion: String
    public var bundle: String
    public var rootfs: String
    public var pid: Int32
    /// /proc/PID/stat start time: tells our init from a recycled pid.
    public var startTime: UInt64
    public var created: String
    public var annotations: [String: String]?
    /// Absolute cgroup directory, removed on delete.
    public var cgroupPath: String?
    /// Hooks that run after create (poststart in start, poststop in delete).
    public var poststart: [Hook]?
    public var poststop: [Hook]?
    /// True once `start` succeeded (the exec barrier was passed).
    public var started: Bool
    /// Whether the container created its own pid namespace (kill semantics); one joined by path
    /// does not count: the init is not its pid 1.
    public var ownPidNamespace: Bool
    /// Paths of namespaces for `exec` (host view), captured at create time.
    public var namespacePaths: [String: String]?
    public var useSystemdCgroup: Bool?
    /// The transient scope systemd made for the container (`--systemd-cgroup` with systemd
    /// running): stopped on delete.
    public var systemdUnit: String?
    /// Topmost cgroup directory that create made (removed with the leaf).
    public var cgroupCreatedTop: String?
    /// The `create` process (pid and /proc start time), set while it is still at work: the record
    /// is saved early so that a create killed midway can be deleted, and once that process is
    /// gone the container is reported stopped. Absent once the container is created.
    public var creatorPid: Int32?
    public var creatorStartTime: UInt64?
    /// linux.netDevices moved in (host name → name in the container), moved back on delete
    /// from the network namespace kept at `<state>/netns`.
    public var netDevices: [String: String]?

    public init(
        id: String, ociVersion: String, bundle: String, rootfs: String, pid: Int32, startTime: UInt64,
        created: String, annotations: [String: String]?, cgroupPath: String?, poststart: [Hook]?,
        poststop: [Hook]?, started: Bool, ownPidNamespace: Bool
    ) {
        self.id = id; self.ociVersion = ociVersion; self.bundle = bundle; self.rootfs = rootfs; self.pid = pid
        self.startTime = startTime; self.created = created; self.annotations = annotations; self.cgroupPath = cgroupPath
        self.poststart = poststart; self.poststop = poststop; self.started = started; self.ownPidNamespace = ownPidNamespace
    }
}

import Glibc
import SkiffSys
import SkiffSpec
import SkiffState

/// The runtime as a library: one value per state root, used by the `skiff` CLI and in-process
/// by the shim. Its verbs live in a file each (Create, Lifecycle, Exec, Control, Run).
public struct Runtime {
    public let store: StateStore
    public var systemdCgroup = false
    /// Skip (with a warning) resource limits whose controller the hierarchy lacks.
    public var skipUnavailableCgroups = false
    /// runc's rootless mode (`--rootless`, auto when not root): a cgroup only where one was
    /// delegated, no device program (it needs CAP_SYS_ADMIN on the host; a user namespace
    /// cannot create device nodes anyway). nil: auto, decided by the create that needs it (the
    /// other verbs never ask, so they do not read /proc/self/uid_map).
    public var rootless: Bool?

    public init(root: String) { store = StateStore(root: root) }

    public static func loadSpec(bundle: String) throws -> Spec { try load(bundle: bundle).spec }

    static func load(bundle: String) throws -> LoadedSpec {
        let path = bundle + "/config.json"
        let bytes: [UInt8]
        do { bytes = try FS.readBytes(path) } catch var e as SkiffError {
            if e.errno == ENOENT { e.hint = "run `skiff spec` in the bundle to write one" }
            throw e
        }
        do {
            let spec = try JSON.decode(Spec.self, from: bytes, what: "config \(quote(path))")
            try Validation.validate(spec, bundle: bundle)
            return LoadedSpec(spec: spec, bytes: bytes)
        } catch var e as SkiffError where e.kind == nil {
            e.kind = .invalid  // a config that does not parse or validate
            throw e
        }
    }
}

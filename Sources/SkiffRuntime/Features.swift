import SkiffSys
import SkiffSpec
import SkiffCgroups
import SkiffSeccomp
import CSkiffSys

/// `skiff features`: what this build really supports (runtime-spec features.md).
public struct Features: Codable {
    public struct Cgroup: Codable { var v1: Bool; var v2: Bool; var systemd: Bool; var systemdUser: Bool; var rdma: Bool }
    public struct SeccompF: Codable {
        var enabled: Bool
        var actions: [String]
        var operators: [String]
        var archs: [String]
        var knownFlags: [String]
        var supportedFlags: [String]
    }
    public struct Enabled: Codable { var enabled: Bool }
    public struct MountExt: Codable { var idmap: Enabled }
    public struct LinuxF: Codable {
        var namespaces: [String]
        var capabilities: [String]
        var cgroup: Cgroup
        var seccomp: SeccompF
        var apparmor: Enabled
        var selinux: Enabled
        var intelRdt: Enabled
        var mountExtensions: MountExt
    }
    var ociVersionMin: String
    var ociVersionMax: String
    var hooks: [String]
    var mountOptions: [String]
    var linux: LinuxF
    var annotations: [String: String]

    public static func current() -> Features {
        Features(
            ociVersionMin: "1.0.0", ociVersionMax: SkiffVersion.spec,
            hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            // Every option applied, the recursive ones (mount_setattr) included; not tmpcopyup,
            // which is accepted and ignored.
            mountOptions: MountOptions.knownNames.filter { $0 != "tmpcopyup" },
            linux: LinuxF(
                namespaces: NamespaceKind.allCases.map(\.rawValue),
                capabilities: CapabilityNames.all,
                cgroup: Cgroup(v1: false, v2: true, systemd: true, systemdUser: false, rdma: false),
                seccomp: SeccompF(
                    enabled: true, actions: SeccompFilter.actions, operators: SeccompFilter.operators.keys.sorted(),
                    archs: SeccompFilter.archs, knownFlags: SeccompFilter.flags, supportedFlags: SeccompFilter.flags),
                apparmor: Enabled(enabled: false), selinux: Enabled(enabled: false), intelRdt: Enabled(enabled: false),
                mountExtensions: MountExt(idmap: Enabled(enabled: false))),
            annotations: ["org.skiff.version": SkiffVersion.version, "io.github.seccomp.libseccomp.version": SeccompFilter.libraryVersion])
    }
}

public enum SkiffVersion {
    public static let version = "0.1.0"
    public static let spec = Spec.version
    /// The git commit the build came from (scripts/setup.sh passes it to the C target), else "unknown".
    public static var commit: String { String(cString: skiff_build_commit()) }
    public static var libseccomp: String { SeccompFilter.libraryVersion }
}

import Glibc

import SkiffJSON

/// Where a shim listens: containerd's convention, `unix:///run/containerd/s/<sha256 hex>` of the
/// path join of containerd's address, the namespace and the group (container id, or a grouping
/// annotation so that a pod's containers share one shim). 64 hex chars keep it under sun_path.
public enum ShimAddress {
    /// SKIFF_SHIM_SOCKET_DIR overrides it: a rootless skiffctl's shims listen under the user's
    /// $XDG_RUNTIME_DIR, which every session of that user sees (each has a mount namespace of
    /// its own, where /run is not writable).
    public static let socketDir = getenv("SKIFF_SHIM_SOCKET_DIR").map { String(cString: $0) } ?? "/run/containerd/s"
    public static let groupAnnotations = ["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"]

    public static func socketPath(containerdAddress: String, namespace: String, group: String) -> String {
        let joined = FS.clean(containerdAddress + "/" + namespace + "/" + group)
        return socketDir + "/" + SHA256.hex(Array(joined.utf8))
    }

    /// The group from the bundle's config.json annotations; the container id when there is none.
    public static func group(bundle: String, id: String) -> String {
        guard let bytes = try? FS.readBytes(bundle + "/config.json"), let v = try? JSONParser.parse(bytes),
            let ann = v["annotations"]
        else { return id }
        for key in groupAnnotations {
            if case .string(let g)? = ann[key], !g.isEmpty { return g }
        }
        return id
    }
}

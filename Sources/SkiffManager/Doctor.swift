import Foundation
import SkiffSys

/// `doctor`: what a crash (of skiffctl, a shim, the machine) can leave inconsistent, and the
/// repair for each: shims without a record, records whose shim is gone, snapshots without an
/// owner, layers whose unpack never finished.
public struct Doctor {
    let store: Store
    let tasks: Tasks

    public init(_ store: Store, tasks: Tasks) { self.store = store; self.tasks = tasks }

    public struct Finding: CustomStringConvertible {
        public var kind: String
        public var object: String
        public var detail: String
        let fix: () throws -> Void
        public var description: String { "\(kind)\t\(object)\t\(detail)" }
    }

    public func findings() throws -> [Finding] {
        var out: [Finding] = []
        let records = Set(try tasks.containers().map(\.id))
        let nsDir = store.state + "/" + store.namespace
        let bundles = (try? FileManager.default.contentsOfDirectory(atPath: nsDir)) ?? []
        for id in bundles.sorted() {
            let bundle = nsDir + "/" + id
            let hasAddress = FileManager.default.fileExists(atPath: bundle + "/address")
            let live = hasAddress && (try? tasks.state(id)) != nil
            if !records.contains(id) {
                out.append(Finding(kind: live ? "shim-without-record" : "bundle-without-record", object: id,
                                   detail: live ? "a shim serves a container skiffctl has no record of" : "a leftover bundle directory") {
                    if live { try? tasks.deleteTask(id, force: true) }
                    try tasks.shimDeleteAction(id)
                    try? FileManager.default.removeItem(atPath: bundle)
                })
            } else if hasAddress && !live {
                out.append(Finding(kind: "record-without-shim", object: id, detail: "its shim is gone; the task is cleaned up") {
                    try tasks.shimDeleteAction(id)
                    unlink(bundle + "/address")
                })
            }
        }
        let snapshots = Snapshotter(store)
        for s in try snapshots.list() {
            if s.kind == "active" && !records.contains(s.key) {
                out.append(Finding(kind: "snapshot-without-owner", object: s.key, detail: "an active snapshot no container uses") {
                    try snapshots.remove(s.key)
                })
            } else if s.kind.hasSuffix("-pending") && !snapshots.busy(s.key) {
                out.append(Finding(kind: "unfinished-snapshot", object: s.key, detail: "an unpack or prepare that never finished") {
                    try snapshots.forget(s)
                })
            }
        }
        return out
    }

    public func fix(_ findings: [Finding]) throws {
        for f in findings { try f.fix() }
    }
}

extension Tasks {
    /// What containerd does for a dead shim: the shim binary's `delete` action (force-deletes the
    /// container in the runtime, unmounts its rootfs).
    func shimDeleteAction(_ id: String) throws {
        let dir = FileManager.default.fileExists(atPath: bundle(id)) ? bundle(id) : "/"
        _ = try Spawn.run(path: shimBinary, args: [shimBinary, "-namespace", store.namespace, "-address", store.state + "/skiffctl", "-id", id,
                                                   "-bundle", bundle(id), "delete"], env: shimEnvironment, stdin: [], timeout: 30, cwd: dir)
        unmountAll(bundle(id) + "/rootfs")
    }
}

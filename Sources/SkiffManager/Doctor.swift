import Foundation
import SkiffJSON
import SkiffSys
import SkiffSpec
import SkiffState

/// `doctor`: what a crash (of skiffctl, a shim, the machine) can leave inconsistent, and the
/// repair for each: shims without a record, records whose shim is gone, snapshots without an
/// owner or without a record, layers whose unpack never finished.
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
                out.append(
                    Finding(
                        kind: live ? "shim-without-record" : "bundle-without-record", object: id,
                        detail: live ? "a shim serves a container skiffctl has no record of" : "a leftover bundle directory"
                    ) {
                        if live { try? tasks.deleteTask(id, force: true) }
                        try tasks.shimDeleteAction(id)
                        try? FileManager.default.removeItem(atPath: bundle)
                    })
            } else if hasAddress && !live {
                out.append(
                    Finding(kind: "record-without-shim", object: id, detail: "its shim is gone; the task is cleaned up") {
                        try tasks.shimDeleteAction(id)
                        unlink(bundle + "/address")
                    })
            }
        }
        // What the runtime and the shims hold that no record names (a failed command used to drop
        // records under live tasks): found in the runtime's state and among running shims.
        let runtime = StateStore(root: tasks.runtimeRoot + "/" + store.namespace)
        var reported = Set(out.map(\.object))
        for id in ((try? runtime.ids()) ?? []).sorted() where !records.contains(id) && !reported.contains(id) {
            reported.insert(id)
            out.append(
                Finding(kind: "container-without-record", object: id, detail: "the runtime holds a container skiffctl has no record of") {
                    tasks.rollbackTask(id)
                    if runtime.exists(id) { try tasks.shimDeleteOrphan(id) }
                })
        }
        for (pid, id) in shimProcesses() where !records.contains(id) && !reported.contains(id) {
            reported.insert(id)
            out.append(
                Finding(kind: "shim-without-record", object: id, detail: "shim pid \(pid) serves a container skiffctl has no record of") {
                    tasks.rollbackTask(id)
                    kill(pid, SIGKILL)
                })
        }
        for id in records.sorted() where !FileManager.default.fileExists(atPath: nsDir + "/" + id + "/address") {
            let address = tasks.shimAddress(id)
            if (try? tasks.state(id)) != nil {
                out.append(
                    Finding(kind: "task-without-address", object: id, detail: "its shim runs but the bundle lost its address") {
                        try address.write(toFile: nsDir + "/" + id + "/address", atomically: true, encoding: .utf8)
                    })
            }
        }
        let ingest = store.root + "/content/ingest"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: ingest)) ?? []).sorted() where name.hasSuffix(".lock") {
            let base = ingest + "/" + String(name.dropLast(5))
            guard !ContentStore.ingestBusy(base) else { continue }
            out.append(
                Finding(kind: "stale-ingest", object: name.dropLast(5).description, detail: "a download that was interrupted (kept for a resume)") {
                    _ = ContentStore.removeIngest(base)
                })
        }
        // Snapshot directories no record names (a crash between a discard's two steps), of every
        // namespace and snapshotter. Listed before the records are read: a record is made
        // before its directory, so a directory listed here has its record by then if it is live.
        let snapshotsDir = store.root + "/snapshots"
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: snapshotsDir)) ?? []
        let ids = Set(try store.db.query("SELECT id FROM snapshots").map { $0[0].int })
        for name in dirs.sorted() {
            guard let id = Int64(name), String(id) == name, !ids.contains(id) else { continue }
            out.append(
                Finding(kind: "snapshot-without-record", object: name, detail: "a snapshot directory no record names") {
                    // Ids are never given twice, so one without a record now has none later.
                    guard try store.db.query("SELECT 1 FROM snapshots WHERE id = ?", [.int(id)]).isEmpty else { return }
                    try FileManager.default.removeItem(atPath: snapshotsDir + "/" + name)
                })
        }
        let snapshots = Snapshotter(store)
        for path in snapshots.staleLocks() {
            out.append(
                Finding(kind: "stale-lock", object: (path as NSString).lastPathComponent, detail: "the lock of a snapshot whose maker died") {
                    Snapshotter.removeStaleLock(path)
                })
        }
        for s in try snapshots.list() {
            if s.kind == "active" && !records.contains(s.key) {
                out.append(
                    Finding(kind: "snapshot-without-owner", object: s.key, detail: "an active snapshot no container uses") {
                        try snapshots.remove(s.key)
                    })
            } else if s.kind.hasSuffix("-pending") && !snapshots.busy(s.key) {
                out.append(
                    Finding(kind: "unfinished-snapshot", object: s.key, detail: "an unpack or prepare that never finished") {
                        guard try snapshots.forgetIfIdle(s) else {
                            throw ManagerError("remove snapshot", s.key, "it is being unpacked again", hint: "run doctor once it is done")
                        }
                    })
            }
        }
        return out
    }

    /// Running shims started for this store and namespace: (pid, container id). A command line
    /// is anyone's to write: only processes of our own uid count, and only ids that are ids
    /// (a "../.." id would name a bundle outside the state directory for the fix to act on).
    func shimProcesses() -> [(pid_t, String)] {
        var out: [(pid_t, String)] = []
        for p in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            var st = stat()
            guard let pid = pid_t(p), stat("/proc/\(p)", &st) == 0, st.st_uid == geteuid(),
                let d = FileManager.default.contents(atPath: "/proc/\(p)/cmdline")
            else { continue }
            let argv = d.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard argv.first?.hasSuffix("containerd-shim-skiff-v2") == true, argv.last != "start", argv.last != "delete" else { continue }
            func value(_ flag: String) -> String? { argv.firstIndex(of: flag).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil } }
            guard value("-address") == store.state + "/skiffctl", value("-namespace") == store.namespace, let id = value("-id"),
                Identifier.isValid(id)
            else { continue }
            out.append((pid, id))
        }
        return out.sorted { $0.1 < $1.1 }
    }

    public func fix(_ findings: [Finding]) throws {
        for f in findings { try f.fix() }
    }
}

extension Tasks {
    /// A container in skiffctl's runtime root that no bundle names: the shim's `delete` action
    /// force-deletes it (skiffctl reaches the runtime only through the shim, as containerd does),
    /// from a scratch bundle that says where the runtime state is, as the shim's Create would.
    func shimDeleteOrphan(_ id: String) throws {
        guard Identifier.isValid(id) else {
            throw ManagerError("delete container", id, "not an id skiffctl makes", hint: "skiff --root \(runtimeRoot)/\(store.namespace) delete -f ID")
        }
        let scratch = store.state + "/doctor-" + id
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let options: JSONValue = .object([("root", .string(runtimeRoot + "/" + store.namespace)), ("namespace", .string(store.namespace))])
        try options.serialized().write(toFile: scratch + "/skiff-shim.json", atomically: true, encoding: .utf8)
        let output = try shimDeleteAction(id, bundle: scratch)
        if StateStore(root: runtimeRoot + "/" + store.namespace).exists(id) {
            throw ManagerError("delete container", id, "the shim's delete action left it: \(output)")
        }
    }

    /// What containerd does for a dead shim: the shim binary's `delete` action (force-deletes the
    /// container in the runtime, unmounts its rootfs), from the container's bundle or `bundle`.
    /// Returns what the action printed.
    @discardableResult
    func shimDeleteAction(_ id: String, bundle given: String? = nil) throws -> String {
        let dir = given ?? bundle(id)
        let cwd = FileManager.default.fileExists(atPath: dir) ? dir : "/"
        let r = try Spawn.run(
            path: shimBinary,
            args: [shimBinary, "-namespace", store.namespace, "-address", store.state + "/skiffctl", "-id", id, "-bundle", dir, "delete"],
            env: shimEnvironment, stdin: [], timeout: 30, cwd: cwd)
        unmountAll(dir + "/rootfs")
        return r.outputText
    }
}

import Foundation
import SkiffSys
import SkiffSpec
import SkiffRuntime
import SkiffTTRPC
import SkiffWire

public struct RunOptions {
    public var image = ""
    public var id = ""
    public var args: [String] = []
    public var env: [String] = []
    public var cwd: String?
    public var user: String?
    public var remove = false
    public var netHost = false
    public var logURI: String?
    public var nullIO = false
    public init() {}
}

/// Containers and tasks: the OCI spec from the image config, the bundle under
/// `state/<namespace>/<id>`, the rootfs as an overlay snapshot, and the task through
/// containerd-shim-skiff-v2 over ttrpc, exactly as containerd would drive it.
public struct Tasks {
    let store: Store
    public let shimBinary: String
    static let task = "containerd.task.v2.Task"

    public init(_ store: Store, shimBinary: String) {
        self.store = store
        self.shimBinary = shimBinary
    }

    func bundle(_ id: String) -> String { store.state + "/" + store.namespace + "/" + id }
    var runtimeRoot: String { store.state + "/runtime" }

    /// The OCI spec: skiff's defaults, then the image's entrypoint/cmd/env/workdir/user, then
    /// the command line's overrides.
    func spec(_ config: ImageConfig, _ o: RunOptions) throws -> Spec {
        var s = DefaultSpec.make(rootless: false)
        let c = config.config
        var p = s.process!
        p.terminal = false
        let args = (c?.Entrypoint ?? []) + (o.args.isEmpty ? (c?.Cmd ?? []) : o.args)
        guard !args.isEmpty else { throw ManagerError("run", o.id, "no command: the image has no entrypoint or cmd", hint: "give one after the image") }
        p.args = args
        var env = c?.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        for e in o.env {
            let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(e)
        }
        p.env = env
        p.cwd = o.cwd ?? ((c?.WorkingDir ?? "").isEmpty ? "/" : c!.WorkingDir!)
        if let u = o.user ?? c?.User, !u.isEmpty {
            let parts = u.split(separator: ":")
            guard let uid = UInt32(parts[0]), parts.count < 2 || UInt32(parts[1]) != nil else {
                throw ManagerError("run", o.id, "user \"\(u)\": only numeric uid[:gid] is supported")
            }
            p.user = User(uid: uid, gid: parts.count > 1 ? UInt32(parts[1])! : 0)
        }
        p.noNewPrivileges = false
        s.process = p
        s.root = Root(path: "rootfs", readonly: false)
        s.hostname = o.id
        if o.netHost { s.linux?.namespaces?.removeAll { $0.type == "network" } }
        s.linux?.cgroupsPath = "/" + store.namespace + "/" + o.id
        return s
    }

    /// `run`: create the container and its task, wait for it, and with --rm remove everything
    /// again, on every path. Returns the exit status.
    public func run(_ o: RunOptions, attachOutput: Bool) throws -> Int32 {
        try Store.validateName(o.id, what: "container id")
        let images = ImageStore(store)
        let image = try images.get(o.image)
        let manifest = try images.manifest(for: image.target)
        let config = try images.config(manifest)
        let snapshots = Snapshotter(store)
        let top = try snapshots.unpack(manifest, config, content: ContentStore(root: store.root))
        let spec = try spec(config, o)

        var undo: [() -> Void] = []
        func rollback() { for u in undo.reversed() { u() } }
        do {
            try store.db.transaction {
                if try !store.db.query("SELECT 1 FROM containers WHERE namespace = ? AND id = ?", [.text(store.namespace), .text(o.id)]).isEmpty {
                    throw ManagerError("create container", o.id, "already exists")
                }
                try store.db.query("INSERT INTO containers(namespace, id, image, snapshot, runtime, spec, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   [.text(store.namespace), .text(o.id), .text(image.name), .text(o.id), .text("io.containerd.skiff.v2"),
                                    .blob(try JSON.encode(spec)), .text(Store.now())])
            }
            undo.append { _ = try? store.db.query("DELETE FROM containers WHERE namespace = ? AND id = ?", [.text(store.namespace), .text(o.id)]) }
            let mount = try snapshots.prepare(key: o.id, parent: top)
            undo.append { try? snapshots.remove(o.id) }
            let dir = bundle(o.id)
            try FileManager.default.createDirectory(atPath: dir + "/rootfs", withIntermediateDirectories: true)
            undo.append { try? FileManager.default.removeItem(atPath: dir) }
            try Data(try JSON.encode(spec)).write(to: URL(fileURLWithPath: dir + "/config.json"))

            let status = try runTask(o, bundle: dir, mount: mount, attachOutput: attachOutput)
            if o.remove { rollback() }
            return status
        } catch {
            rollback()
            throw error
        }
    }

    func runTask(_ o: RunOptions, bundle dir: String, mount: (type: String, source: String, options: [String]), attachOutput: Bool) throws -> Int32 {
        // The shim: `start` prints the socket; the daemon outlives this command.
        let address = try startShim(id: o.id, bundle: dir)
        let client = try TTRPCClient.connect(address)
        func call<R: ProtoMessage>(_ method: String, _ req: some ProtoMessage, timeoutMs: Int32 = 60_000) throws -> R {
            try R(protoBytes: try client.call(service: Tasks.task, method: method, payload: req.protoBytes(), timeoutMs: timeoutMs))
        }
        var created = false
        defer {
            if created { var d = DeleteRequest(); d.id = o.id; let _: DeleteResponse? = try? call("Delete", d) }
            let _: ProtoEmpty? = try? call("Shutdown", ShutdownRequest())
        }
        var create = CreateTaskRequest()
        create.id = o.id
        create.bundle = dir
        var m = SkiffWire.Mount()
        m.type = mount.type; m.source = mount.source; m.options = mount.options
        create.rootfs = [m]
        var opts = RuncOptions()
        opts.root = runtimeRoot
        create.options = ProtoAny(typeURL: RuncOptions.protoName, value: opts.protoBytes())
        var outFd: Int32 = -1, errFd: Int32 = -1
        if let log = o.logURI {
            create.stdout = log; create.stderr = log
        } else if !o.nullIO && attachOutput {
            for (n, name) in [(1, "stdout"), (2, "stderr")] {
                let path = dir + "/" + name
                if mkfifo(path, 0o600) != 0 { throw ManagerError("run", path, String(cString: strerror(errno))) }
                let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                if n == 1 { outFd = fd; create.stdout = path } else { errFd = fd; create.stderr = path }
            }
        }
        defer { if outFd >= 0 { close(outFd) }; if errFd >= 0 { close(errFd) } }
        let _: CreateTaskResponse = try call("Create", create)
        created = true
        var waitReq = WaitRequest(); waitReq.id = o.id
        let waitStream = try client.send(service: Tasks.task, method: "Wait", payload: waitReq.protoBytes(), timeoutMs: Int32.max)
        var start = StartRequest(); start.id = o.id
        let _: StartResponse = try call("Start", start)
        // Copy output until the shim closes the FIFOs (the container and its output are done).
        var open = [(outFd, Int32(1)), (errFd, Int32(2))].filter { $0.0 >= 0 }
        var buf = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var pfds = open.map { pollfd(fd: $0.0, events: Int16(POLLIN), revents: 0) }
            if poll(&pfds, nfds_t(pfds.count), 200) < 0 && errno != EINTR { break }
            var still: [(Int32, Int32)] = []
            for (i, pair) in open.enumerated() {
                if pfds[i].revents == 0 { still.append(pair); continue }
                let n = read(pair.0, &buf, buf.count)
                if n > 0 { _ = write(pair.1, buf, n); still.append(pair) } else if n < 0 && errno == EAGAIN { still.append(pair) }
            }
            open = still
        }
        let exit = try WaitResponse(protoBytes: try client.receive(stream: waitStream, timeoutMs: Int32.max, what: "wait"))
        return Int32(bitPattern: exit.exitStatus)
    }

    func startShim(id: String, bundle: String) throws -> String {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: shimBinary)
        p.arguments = ["-namespace", store.namespace, "-address", store.state + "/skiffctl", "-id", id, "start"]
        p.currentDirectoryURL = URL(fileURLWithPath: bundle)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TTRPC_ADDRESS")
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, text.hasPrefix("unix://") else {
            throw ManagerError("start shim", id, text.isEmpty ? "exit status \(p.terminationStatus)" : text)
        }
        return text
    }

    public func containers() throws -> [(id: String, image: String, runtime: String)] {
        try store.db.query("SELECT id, image, runtime FROM containers WHERE namespace = ? ORDER BY id", [.text(store.namespace)])
            .map { ($0[0].string, $0[1].string, $0[2].string) }
    }
}

import Foundation
import ArgumentParser
import SkiffManager
import SkiffTTRPC
import SkiffSys

/// skiffctl: a daemonless, ctr-like manager. Each command opens the store itself.
func env(_ key: String) -> String? { getenv(key).map { String(cString: $0) } }

struct Global: ParsableArguments {
    @Option(name: .long, help: "Config file (root, state).") var config = env("SKIFF_CONFIG") ?? Store.defaultConfigPath
    @Option(name: .long, help: "Root directory (content, snapshots, metadata).") var root: String? = env("SKIFF_ROOT")
    @Option(name: .long, help: "State directory (bundles, shim sockets).") var state: String? = env("SKIFF_STATE")
    @Option(name: [.short, .long], help: "Namespace (env SKIFF_NAMESPACE).") var namespace = env("SKIFF_NAMESPACE") ?? "default"

    func store() throws -> Store {
        let cfg = try Store.readConfig(config)
        let s = try Store(root: root ?? cfg["root"] ?? Store.defaultRoot, state: state ?? cfg["state"] ?? Store.defaultState, namespace: namespace)
        s.snapshotter = cfg["snapshotter"]
        return s
    }
}

struct SkiffCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skiffctl", abstract: "A minimal daemonless container manager over containerd-shim-skiff-v2.",
        subcommands: [
            ConfigCommand.self, Namespaces.self, Images.self, Content.self, Snapshots.self, Containers.self, TasksCommand.self,
            Run.self, Events.self, DoctorCommand.self, LeasesCommand.self
        ])
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration.", subcommands: [Default.self])
    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "default", abstract: "Print the default config.")
        func run() { print(Store.defaultConfig, terminator: "") }
    }
}

struct Namespaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespaces", abstract: "Namespaces.", subcommands: [List.self, Create.self, Remove.self],
        aliases: ["ns"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws { for n in try g.store().namespaces() { print(n) } }
    }
    struct Create: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var name: String
        func run() throws { try g.store().createNamespace(name) }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var name: String
        func run() throws { try g.store().removeNamespace(name) }
    }
}

struct Images: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "Images.",
        subcommands: [
            List.self, Pull.self, Push.self, Import.self, Export.self, Remove.self, Tag.self, Check.self, Mount.self,
            Unmount.self, Prune.self
        ],
        aliases: ["image", "i"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        @Flag(name: .short, help: "Names only.") var quiet = false
        func run() throws {
            let images = ImageStore(try g.store())
            let list = try images.list()
            if quiet { list.forEach { print($0.name) }; return }
            print("REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS")
            for i in list {
                let s = images.summary(i)
                let size = s.size >= 1 << 20 ? String(format: "%.1f MiB", Double(s.size) / 1048576) : String(format: "%.1f KiB", Double(s.size) / 1024)
                print("\(i.name)\t\(i.target.mediaType)\t\(i.target.digest)\t\(size)\t\(s.platforms.joined(separator: ","))\t-")
            }
        }
    }
    struct Pull: ParsableCommand {
        @OptionGroup var g: Global
        @OptionGroup var r: RegistryFlags
        @Option(name: .long, help: "os/arch[/variant] to pull from an index.") var platform = "linux/amd64"
        @Flag(name: .customLong("all-platforms")) var allPlatforms = false
        @Argument var ref: String
        func run() throws {
            var o = try r.options()
            o.platform = platform
            o.allPlatforms = allPlatforms
            // Unpacked while it downloads: the manifest unpacked below, the host's.
            o.unpack = !allPlatforms && platform == "linux/amd64"
            let store = try g.store()
            let images = ImageStore(store)
            let name = try images.pull(ref, options: o)
            // Unpack what runs here, as ctr pull does (another platform's layers only download:
            // the host's manifest, which the unpack takes, is not among them).
            if platform == "linux/amd64" {
                let image = try images.get(name)
                let m = try images.manifest(for: image.target)
                _ = try Unpacker(content: ContentStore(root: store.root), snapshots: Snapshotter(store)).unpack(m, try images.config(m))
            }
            print("\(name): \(try images.get(name).target.digest)")
        }
    }
    struct Push: ParsableCommand {
        @OptionGroup var g: Global
        @OptionGroup var r: RegistryFlags
        @Argument var ref: String
        @Argument var target: String?
        func run() throws { try ImageStore(try g.store()).push(ref, to: target, options: try r.options()) }
    }
    struct Import: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: .long, help: "Name for images the archive names only by a tag (NAME:TAG) or not at all.") var baseName: String?
        @Option(name: .long, help: "Keep the archive's index as an image of this name.") var indexName: String?
        @Argument var file: String
        func run() throws {
            for name in try ImageStore(try g.store()).importArchive(file, baseName: baseName, indexName: indexName) { print("imported \(name)") }
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var refs: [String]
        func run() throws { let s = ImageStore(try g.store()); for r in refs { try s.remove(r) } }
    }
    struct Export: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: .long, help: "oci (an OCI image layout) or docker (docker save's format).") var format = "oci"
        @Argument(help: "The archive to write (replaced only once it is whole), or - for standard output.") var file: String
        @Argument var refs: [String]
        func run() throws {
            let images = ImageStore(try g.store())
            switch format {
            case "oci": try images.export(refs, to: file)
            case "docker": try images.exportDocker(refs, to: file)
            default: throw ValidationError("--format is oci or docker")
            }
        }
    }
    struct Check: ParsableCommand {
        @OptionGroup var g: Global
        func run() throws {
            let images = ImageStore(try g.store())
            print("REF\tSTATUS\tBLOBS")
            for i in try images.list() {
                let c = try images.check(i.name)
                print("\(i.name)\t\(c.complete ? "complete" : "incomplete")\t\(c.present)/\(c.present + c.missing)")
            }
        }
    }
    struct Mount: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var ref: String
        @Argument var target: String
        func run() throws {
            let store = try g.store()
            let images = ImageStore(store)
            let m = try images.manifest(for: try images.get(ref).target)
            let snapshots = Snapshotter(store)
            let top = try Unpacker(content: ContentStore(root: store.root), snapshots: snapshots).unpack(m, try images.config(m))
            try snapshots.mountReadOnly(top: top, at: target)
            print(target)
        }
    }
    struct Unmount: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var target: String
        func run() throws {
            if umount2(target, Int32(MNT_DETACH)) != 0 {
                throw ManagerError("unmount", target, String(cString: strerror(errno)))
            }
        }
    }
    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove content and snapshots no image or container needs.")
        @OptionGroup var g: Global
        func run() throws {
            let store = try g.store()
            let gc = GarbageCollector(store)
            for k in try gc.pruneSnapshots(Snapshotter(store)) { print("removed snapshot \(k)") }
            for d in try gc.pruneContent() { print("removed content \(d)") }
            let n = ContentStore(root: store.root).pruneIngests()
            if n > 0 { print("removed \(n) interrupted download(s)") }
        }
    }
    struct Tag: ParsableCommand {
        @OptionGroup var g: Global
        @Flag var force = false
        @Argument var source: String
        @Argument var target: String
        func run() throws { try ImageStore(try g.store()).tag(source, target, force: force) }
    }
}

struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots", abstract: "Snapshots.",
        subcommands: [List.self, Prepare.self, Commit.self, Mounts.self, Remove.self, Prune.self],
        aliases: ["snapshot"])
    struct Prepare: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var key: String
        @Argument var parent: String
        func run() throws { try Snapshotter(try g.store()).prepare(key: key, parent: parent) }
    }
    struct Commit: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var name: String
        @Argument var key: String
        func run() throws { try Snapshotter(try g.store()).commit(name: name, key: key) }
    }
    struct Mounts: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the mount command for an active snapshot at TARGET.")
        @OptionGroup var g: Global
        @Argument var target: String
        @Argument var key: String
        func run() throws {
            let m = try Snapshotter(try g.store()).mount(key)
            print("mount -t \(m.type) \(m.source) \(target) -o \(m.options.joined(separator: ","))")
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var keys: [String]
        func run() throws {
            let store = try g.store()
            let owners = Set(try Tasks(store, shimBinary: shimPath()).containers().map(\.id))
            for k in keys {
                if owners.contains(k) { throw ManagerError("remove snapshot", k, "container \(k) uses it", hint: "skiffctl containers rm \(k)") }
                try Snapshotter(store).remove(k)
            }
        }
    }
    struct Prune: ParsableCommand {
        @OptionGroup var g: Global
        func run() throws {
            let store = try g.store()
            for k in try GarbageCollector(store).pruneSnapshots(Snapshotter(store)) { print("removed \(k)") }
        }
    }
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            print("KEY\tPARENT\tKIND")
            for s in try Snapshotter(try g.store()).list() { print("\(s.key)\t\(s.parent ?? "")\t\(s.kind)") }
        }
    }
}

struct Content: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "content", abstract: "The content store.",
        subcommands: [List.self, Get.self, Remove.self, Prune.self])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            let store = try g.store()
            let content = ContentStore(root: store.root)
            print("DIGEST\tSIZE")
            for d in content.all() {
                let size = (try? FileManager.default.attributesOfItem(atPath: try content.path(d))[.size] as? Int) ?? 0
                print("\(d)\t\(size)")
            }
        }
    }
    struct Get: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var digest: String
        func run() throws {
            let blob = try ContentStore(root: try g.store().root).openBlob(digest)
            defer { close(blob.fd) }
            let r = copyBytes(from: blob.fd, to: 1, count: blob.size)
            if let e = r.readError { throw ManagerError("content get: read", digest, String(cString: strerror(e))) }
            if let e = r.writeError {
                throw ManagerError(
                    "content get: write", "standard output", e == EINTR ? "interrupted by signal \(Interrupts.signal)" : String(cString: strerror(e)))
            }
            if r.copied < blob.size { throw ManagerError("content get", digest, "ended after \(r.copied) of its \(blob.size) bytes") }
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var digests: [String]
        func run() throws {
            let store = try g.store()
            let keep = try GarbageCollector(store).referencedContent()
            for d in digests {
                if keep.contains(d) { throw ManagerError("remove content", d, "an image references it", hint: "remove the image first") }
                try ContentStore(root: store.root).remove(d)
            }
        }
    }
    struct Prune: ParsableCommand {
        @OptionGroup var g: Global
        func run() throws {
            let store = try g.store()
            for d in try GarbageCollector(store).pruneContent() { print("removed \(d)") }
            let n = ContentStore(root: store.root).pruneIngests()
            if n > 0 { print("removed \(n) interrupted download(s)") }
        }
    }
}

struct LeasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases", abstract: "Leases: content kept from garbage collection.",
        subcommands: [List.self, Create.self, Remove.self])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            print("ID\tCREATED\tEXPIRES\tRESOURCES")
            for l in try Leases(try g.store()).list() {
                print("\(l.id)\t\(l.created)\t\(Date(timeIntervalSince1970: TimeInterval(l.expires)))\t\(l.resources.count)")
            }
        }
    }
    struct Create: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: .long) var id = "lease-" + UUID().uuidString.prefix(8).lowercased()
        @Option(name: .long, help: "Seconds until it expires.") var expires: Int64 = 86400
        @Option(name: .long, parsing: .singleValue, help: "A content digest to keep.") var content: [String] = []
        func run() throws { try Leases(try g.store()).create(id: id, expiresIn: expires, content: content); print(id) }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var ids: [String]
        func run() throws { let l = Leases(try g.store()); for id in ids { try l.remove(id) } }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The task events the shims published (JSON lines).")
    @OptionGroup var g: Global
    @Flag(name: [.short, .long], help: "Keep printing new events.") var follow = false
    func run() throws {
        let store = try g.store()
        let path = Tasks(store, shimBinary: shimPath()).eventsFile
        var offset: UInt64 = 0
        repeat {
            if let fh = FileHandle(forReadingAtPath: path) {
                fh.seek(toFileOffset: offset)
                let data = fh.readDataToEndOfFile()
                offset += UInt64(data.count)
                FileHandle.standardOutput.write(data)
                try? fh.close()
            }
            if follow { usleep(200_000) }
        } while follow
    }
}

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor", abstract: "Find (and with --fix, repair) orphans.")
    @OptionGroup var g: Global
    @Flag(name: .long) var fix = false
    func run() throws {
        let store = try g.store()
        let doctor = Doctor(store, tasks: Tasks(store, shimBinary: shimPath()))
        let found = try doctor.findings()
        if found.isEmpty { print("no problems found"); return }
        for f in found { print(f) }
        if fix { try doctor.fix(found); print("fixed \(found.count)") }
    }
}

/// Registry flags shared by pull and push.
struct RegistryFlags: ParsableArguments {
    @Flag(name: .customLong("plain-http"), help: "Use HTTP, not HTTPS.") var plainHTTP = false
    @Flag(name: .customLong("skip-verify"), help: "Do not verify the registry's TLS certificate.") var skipVerify = false
    @Option(name: [.short, .customLong("user")], help: "user:password") var user: String?

    func options() throws -> RegistryOptions {
        var o = RegistryOptions()
        o.plainHTTP = plainHTTP
        o.skipVerify = skipVerify
        o.progress = isatty(2) != 0
        o.hostsDir = env("SKIFF_HOSTS_DIR") ?? o.hostsDir
        if let u = user {
            guard let colon = u.firstIndex(of: ":") else { throw ValidationError("-u wants user:password") }
            o.credentials = (String(u[..<colon]), String(u[u.index(after: colon)...]))
        }
        return o
    }
}

/// Options that shape a container's spec (shared by `containers create` and `run`).
struct SpecOptions: ParsableArguments {
    @Flag(name: .customLong("net-host"), help: "Use the host's network namespace.") var netHost = false
    @Option(name: .long, parsing: .singleValue, help: "Environment variable K=V.") var env: [String] = []
    @Option(name: .long, help: "Working directory.") var cwd: String?
    @Option(name: [.short, .long], help: "uid[:gid].") var user: String?
    @Option(name: .long, parsing: .singleValue, help: "type=bind,src=/host/path,dst=/path,options=rbind:ro") var mount: [String] = []

    func options(image: String, id: String, command: [String]) -> RunOptions {
        var o = RunOptions()
        o.image = image; o.id = id; o.args = command; o.env = env; o.cwd = cwd; o.user = user; o.netHost = netHost; o.mounts = mount
        return o
    }
}

func tasks(_ g: Global) throws -> Tasks { Tasks(try g.store(), shimBinary: shimPath()) }

struct Containers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "containers", abstract: "Containers.",
        subcommands: [List.self, Create.self, Info.self, Remove.self], aliases: ["container", "c"])
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        func run() throws {
            print("CONTAINER\tIMAGE\tRUNTIME")
            for c in try tasks(g).containers() { print("\(c.id)\t\(c.image)\t\(c.runtime)") }
        }
    }
    struct Create: ParsableCommand {
        @OptionGroup var g: Global
        @OptionGroup var spec: SpecOptions
        @Argument var image: String
        @Argument var id: String
        @Argument(parsing: .captureForPassthrough) var command: [String] = []
        func run() throws { try tasks(g).createContainer(spec.options(image: image, id: id, command: command)) }
    }
    struct Info: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var id: String
        func run() throws {
            print(try tasks(g).containerInfo(id).serialized(indent: 2))
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Argument var ids: [String]
        func run() throws { let t = try tasks(g); for id in ids { try t.removeContainer(id) } }
    }
}

/// Signal names as ctr takes them (SIGKILL, KILL, 9).
func signalNumber(_ s: String) throws -> UInt32 {
    if let n = UInt32(s) { return n }
    let names = ["HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15, "CONT": 18, "STOP": 19]
    let key = s.uppercased().hasPrefix("SIG") ? String(s.uppercased().dropFirst(3)) : s.uppercased()
    guard let n = names[key] else { throw ValidationError("unknown signal \(s)") }
    return UInt32(n)
}

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks", abstract: "Tasks (through the shim).",
        subcommands: [
            Start.self, List.self, Kill.self, Exec.self, Pause.self, Resume.self,
            PS.self, Metrics.self, Remove.self
        ], aliases: ["task", "t"])
    struct Start: ParsableCommand {
        @OptionGroup var g: Global
        @Flag(name: .short, help: "Detach.") var detach = false
        @Flag(name: .customLong("null-io")) var nullIO = false
        @Option(name: .customLong("log-uri")) var logURI: String?
        @Argument var id: String
        func run() throws {
            let status = try tasks(g).startTask(id, detach: detach, logURI: logURI, nullIO: nullIO)
            if status != 0 { throw ExitCode(status) }
        }
    }
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls")
        @OptionGroup var g: Global
        @Flag(name: .short) var quiet = false
        func run() throws {
            let list = try tasks(g).tasks()
            if quiet { list.forEach { print($0.id) }; return }
            print("TASK\tPID\tSTATUS")
            let ts = try tasks(g)
            for t in list {
                print("\(t.id)\t\(t.pid)\t\(String(describing: t.status).uppercased())")
                for loss in ts.outputLosses(t.id) { FileHandle.standardError.write(Data("warning: task \(t.id): \(loss)\n".utf8)) }
            }
        }
    }
    struct Kill: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: [.short, .long]) var signal = "SIGTERM"
        @Flag(name: [.short, .long]) var all = false
        @Option(name: .customLong("exec-id")) var execID = ""
        @Argument var id: String
        func run() throws { try tasks(g).kill(id, signal: try signalNumber(signal), all: all, execID: execID) }
    }
    struct Exec: ParsableCommand {
        @OptionGroup var g: Global
        @Option(name: .customLong("exec-id")) var execID: String?
        @Flag(name: [.short, .customLong("tty")], help: "Give the process a terminal.") var tty = false
        @Option(name: .long) var cwd: String?
        @Option(name: .long, parsing: .singleValue) var env: [String] = []
        @Argument var id: String
        @Argument(parsing: .captureForPassthrough) var command: [String]
        func run() throws {
            let eid = execID ?? "exec-" + UUID().uuidString.prefix(8).lowercased()
            let status = try tasks(g).exec(id, execID: eid, args: command, cwd: cwd, env: env, tty: tty)
            if status != 0 { throw ExitCode(status) }
        }
    }
    struct Pause: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var id: String
        func run() throws { try tasks(g).pause(id) }
    }
    struct Resume: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var id: String
        func run() throws { try tasks(g).resume(id) }
    }
    struct PS: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ps")
        @OptionGroup var g: Global
        @Argument var id: String
        func run() throws {
            print("PID\tINFO")
            for p in try tasks(g).pids(id) { print("\(p.pid)\t\(p.execID.isEmpty ? "-" : p.execID)") }
        }
    }
    struct Metrics: ParsableCommand {
        @OptionGroup var g: Global
        @Argument var id: String
        func run() throws {
            let m = try tasks(g).metrics(id)
            print("METRIC\tVALUE")
            if let p = m.pids { print("pids.current\t\(p.current)"); print("pids.limit\t\(p.limit)") }
            if let c = m.cpu { print("cpu.usage_usec\t\(c.usageUsec)"); print("cpu.user_usec\t\(c.userUsec)"); print("cpu.system_usec\t\(c.systemUsec)") }
            if let mem = m.memory { print("memory.usage\t\(mem.usage)"); print("memory.usage_limit\t\(mem.usageLimit)") }
            for h in m.hugetlb { print("hugetlb.\(h.pagesize).current\t\(h.current)") }
        }
    }
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm")
        @OptionGroup var g: Global
        @Flag(name: [.short, .long], help: "Kill the task first.") var force = false
        @Argument var id: String
        func run() throws { try tasks(g).deleteTask(id, force: force) }
    }
}

/// containerd-shim-skiff-v2 next to skiffctl's own binary, else in PATH's absolute directories.
/// Never relative to the working directory: `argv[0]` is "skiffctl" when a shell found it on
/// PATH, and a shim another user left in the directory root runs skiffctl from would run as root.
func shimPath() -> String {
    let local = FS.dirname(FS.readlink("/proc/self/exe") ?? "/usr/local/bin/skiffctl") + "/containerd-shim-skiff-v2"
    if FileManager.default.isExecutableFile(atPath: local) { return local }
    return FS.which("containerd-shim-skiff-v2", path: env("PATH") ?? "") ?? local
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a container from an image through the shim.")
    @OptionGroup var g: Global
    @OptionGroup var spec: SpecOptions
    @Flag(name: .long, help: "Remove the container when it exits.") var rm = false
    @Flag(name: .short, help: "Detach: start the task and return.") var detach = false
    @Flag(name: [.short, .customLong("tty")], help: "Give the container a terminal.") var tty = false
    @Flag(name: .customLong("null-io"), help: "Send the container's output to /dev/null.") var nullIO = false
    @Option(name: .customLong("log-uri"), help: "file:///path or binary:///path for the output.") var logURI: String?
    @Argument var image: String
    @Argument var id: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func validate() throws {
        if rm && detach { throw ValidationError("--rm and -d cannot be used together") }
    }

    func run() throws {
        var o = spec.options(image: image, id: id, command: command)
        o.remove = rm; o.logURI = logURI; o.nullIO = nullIO; o.tty = tty
        let status = try tasks(g).run(o, attachOutput: true, detach: detach)
        if status != 0 { throw ExitCode(status) }
    }
}

// A user who is not root: the rest runs in a user namespace of its own (UserSession).
UserSession.enterIfNeeded()
/// ctr's order: global options come before the command (`skiffctl -n ns images ls`). They are
/// handed to the subcommands' option group through the environment.
var args = Array(CommandLine.arguments.dropFirst())
let globalFlags = ["--root": "SKIFF_ROOT", "--state": "SKIFF_STATE", "--config": "SKIFF_CONFIG", "-n": "SKIFF_NAMESPACE", "--namespace": "SKIFF_NAMESPACE"]
while let first = args.first, first.hasPrefix("-") {
    var name = first, value: String?
    if let eq = first.firstIndex(of: "=") { name = String(first[..<eq]); value = String(first[first.index(after: eq)...]) }
    guard let key = globalFlags[name] else { break }
    args.removeFirst()
    if value == nil {
        guard !args.isEmpty else { SkiffCtl.exit(withError: ValidationError("\(name) needs a value")) }
        value = args.removeFirst()
    }
    setenv(key, value!, 1)
}
/// `run` is the command whose latency matters (it starts containers): parsed by hand when it
/// uses only its known flags. ArgumentParser's first parse walks every command's properties
/// through reflection (~5 ms in this binary); anything else (help, errors) still goes through it.
func fastRun(_ args: [String]) -> (RunOptions, Bool)? {
    guard args.first == "run" else { return nil }
    var o = RunOptions()
    var detach = false
    var i = 1
    var positional: [String] = []
    func value(_ name: String, _ arg: String) -> String? {
        if arg.hasPrefix(name + "=") { return String(arg.dropFirst(name.count + 1)) }
        guard arg == name, i + 1 < args.count else { return nil }
        i += 1
        return args[i]
    }
    while i < args.count && positional.count < 2 {
        let a = args[i]
        if !a.hasPrefix("-") || a == "-" { positional.append(a); i += 1; continue }
        switch a {
        case "--rm": o.remove = true
        case "-d": detach = true
        case "--null-io": o.nullIO = true
        case "-t", "--tty": o.tty = true
        case "--net-host": o.netHost = true
        default:
            if let v = value("--log-uri", a) {
                o.logURI = v
            } else if let v = value("--env", a) {
                o.env.append(v)
            } else if let v = value("--cwd", a) {
                o.cwd = v
            } else if let v = value("--mount", a) {
                o.mounts.append(v)
            } else if let v = value("--user", a) ?? value("-u", a) {
                o.user = v
            } else {
                return nil
            }
        }
        i += 1
    }
    guard positional.count == 2, !(o.remove && detach) else { return nil }
    o.image = positional[0]
    o.id = positional[1]
    o.args = Array(args[i...])
    return (o, detach)
}

/// The store from the environment the global options were moved into (or the defaults).
func storeFromEnvironment() throws -> Store {
    let cfg = try Store.readConfig(env("SKIFF_CONFIG") ?? Store.defaultConfigPath)
    let s = try Store(
        root: env("SKIFF_ROOT") ?? cfg["root"] ?? Store.defaultRoot, state: env("SKIFF_STATE") ?? cfg["state"] ?? Store.defaultState,
        namespace: env("SKIFF_NAMESPACE") ?? "default")
    s.snapshotter = cfg["snapshotter"]
    return s
}

// A shim that dies under us is an error to report, not a SIGPIPE that ends us silently.
signal(SIGPIPE, SIG_IGN)
// Long transfers stop cleanly on Ctrl-C or SIGTERM (kept for a resume, nothing half-recorded);
// other commands keep the default (an attached run's task lives on in its shim).
if args.first == "images" || args.first == "pull" || args.first == "content" {
    Interrupts.install()
}

do {
    if let (o, detach) = fastRun(args) {
        let status = try Tasks(try storeFromEnvironment(), shimBinary: shimPath()).run(o, attachOutput: true, detach: detach)
        exit(status)
    } else {
        var command = try SkiffCtl.parseAsRoot(args)
        try command.run()
    }
} catch let e as ManagerError {
    // The project's error convention, not the parser's "Error: " prefix.
    FileHandle.standardError.write(Data("skiffctl: \(e)\n".utf8))
    exit(Interrupts.signal != 0 ? 128 + Interrupts.signal : 1)
} catch let e as SkiffError {
    FileHandle.standardError.write(Data("skiffctl: \(e)\n".utf8))
    exit(1)
} catch let e as TTRPCStatus {
    FileHandle.standardError.write(Data("skiffctl: shim: \(e)\n".utf8))
    exit(1)
} catch let e as CocoaError {
    // Foundation's file errors: a sentence with the path, not a struct dump.
    let path = (e.userInfo[NSFilePathErrorKey] as? String).map { " \"\($0)\"" } ?? ""
    let cause = (e.underlying as? POSIXError).map { String(cString: strerror($0.code.rawValue)) } ?? e.localizedDescription
    FileHandle.standardError.write(Data("skiffctl: file\(path): \(cause)\n".utf8))
    exit(1)
} catch {
    SkiffCtl.exit(withError: error)
}

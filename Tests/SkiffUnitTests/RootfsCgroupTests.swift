import XCTest
import Foundation
import SkiffSys
@testable import SkiffRootfs
@testable import SkiffCgroups
@testable import SkiffRuntime
import SkiffSpec
import SkiffState

/// Path resolution and cgroup logic against temp dirs: no root, no mounts.
final class SecurePathTests: XCTestCase {
    var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "skiff-sp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: root + "/abs", withDestinationPath: "/etc")
        try fm.createSymbolicLink(atPath: root + "/up", withDestinationPath: "../../../../etc")
        try fm.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "loop")
        try fm.createSymbolicLink(atPath: root + "/chain", withDestinationPath: "abs/x")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// The host path an fd from InRoot refers to.
    func path(_ fd: Int32) -> String {
        defer { close(fd) }
        return (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "(fd \(fd): \(errno))"
    }

    func testSymlinksStayInsideTheRoot() throws {
        try FileManager.default.createDirectory(atPath: root + "/etc/x/y", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/etc/passwd", contents: Data())
        let r = open(root, InRoot.oPath | O_DIRECTORY)
        defer { close(r) }
        XCTAssertEqual(path(InRoot.open(r, "/abs/passwd")), root + "/etc/passwd")
        XCTAssertEqual(path(InRoot.open(r, "/up/passwd")), root + "/etc/passwd")
        XCTAssertEqual(path(InRoot.open(r, "/../../etc/../..")), root)
        XCTAssertEqual(path(InRoot.open(r, "/chain/y")), root + "/etc/x/y")
        XCTAssertLessThan(InRoot.open(r, "/loop/x"), 0)
        XCTAssertEqual(errno, ELOOP)
        XCTAssertLessThan(InRoot.open(r, "/abs", noSymlinks: true), 0, "a strict lookup refuses any symlink")
        XCTAssertEqual(errno, ELOOP)
    }

    /// /proc/self/fd/N and /proc/self/cwd name objects outside any root: refused even with "/" as the root.
    func testMagicLinksAreRefused() throws {
        let r = open("/", InRoot.oPath | O_DIRECTORY)
        defer { close(r) }
        for p in ["/proc/self/cwd", "/proc/self/root", "/proc/self/fd/\(r)", "/proc/self/fd/\(r)/etc"] {
            XCTAssertLessThan(InRoot.open(r, p), 0, p)
            XCTAssertEqual(errno, ELOOP, p)
        }
        XCTAssertThrowsError(try InRoot.mkdirAll(r, "/proc/self/fd/\(r)/escaped")) { e in
            XCTAssertTrue("\(e)".contains("too many levels of symbolic links"), "\(e)")
        }
    }

    func testMkdirAllCreatesInsideTheRoot() throws {
        let r = open(root, InRoot.oPath | O_DIRECTORY)
        defer { close(r) }
        XCTAssertEqual(path(try InRoot.mkdirAll(r, "/up/new/dir")), root + "/etc/new/dir")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/etc/new/dir"))
        XCTAssertEqual(path(try InRoot.createFile(r, "/abs/made/file")), root + "/etc/made/file")
        XCTAssertThrowsError(try InRoot.createFile(r, "/etc")) { e in XCTAssertEqual((e as? SkiffError)?.errno, EISDIR) }
        // A dangling symlink is followed to its target, created inside the root.
        try FileManager.default.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/outside/of/root")
        XCTAssertEqual(path(try InRoot.mkdirAll(r, "/dangling/sub")), root + "/outside/of/root/sub")
        let (parent, name) = try InRoot.parent(r, "/chain/dev/null")
        XCTAssertEqual(path(parent), root + "/etc/x/dev")
        XCTAssertEqual(name, "null")
    }
}

final class CgroupTests: XCTestCase {
    func testMountpointFromMountinfo() {
        let mi = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        XCTAssertEqual(Cgroup2.findMountpoint(mountinfo: mi), "/sys/fs/cgroup/unified")
        XCTAssertEqual(Cgroup2.findMountpoint(mountinfo: "29 1 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate"), "/sys/fs/cgroup")
        XCTAssertNil(Cgroup2.findMountpoint(mountinfo: "1 2 0:1 / / rw - ext4 /dev/vda rw"))
    }

    func testPathResolution() throws {
        XCTAssertEqual(try Cgroup2.resolve(cgroupsPath: "/a/b", id: "x", systemd: false, own: "/user.slice"), "/a/b")
        XCTAssertEqual(try Cgroup2.resolve(cgroupsPath: "a/b", id: "x", systemd: false, own: "/user.slice"), "/user.slice/a/b")
        XCTAssertEqual(try Cgroup2.resolve(cgroupsPath: nil, id: "x", systemd: false, own: "/"), "/x")
        XCTAssertEqual(
            try Cgroup2.resolve(cgroupsPath: "machine-web.slice:docker:abc", id: "x", systemd: true, own: "/"),
            "/machine.slice/machine-web.slice/docker-abc.scope")
        XCTAssertThrowsError(try Cgroup2.resolve(cgroupsPath: "/..", id: "x", systemd: false, own: "/"))
        XCTAssertThrowsError(try Cgroup2.resolve(cgroupsPath: "a:b:c", id: "x", systemd: false, own: "/"))
        XCTAssertEqual(Cgroup2.ownPath(procSelfCgroup: "9:pids:/\n0::/user.slice/s.scope\n"), "/user.slice/s.scope")
    }

    func testCreateAndRemoveOnlyWhatWasCreated() throws {
        let mp = NSTemporaryDirectory() + "skiff-cg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mp + "/existing", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mp) }
        let cg = Cgroup2(mountpoint: mp, path: "/existing/new/leaf")
        let top = try cg.create()
        XCTAssertEqual(top, mp + "/existing/new")
        XCTAssertTrue(cg.exists)
        try cg.remove(createdTop: top)
        XCTAssertFalse(FileManager.default.fileExists(atPath: mp + "/existing/new"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: mp + "/existing"), "a parent that existed stays")
    }

    /// The root of a cgroup hierarchy (a mount point) is never signalled or emptied, whatever
    /// path a record names: its cgroup.procs lists every process not in a cgroup of its own.
    /// A tmpfs with a cgroup.procs naming a bystander stands in for it.
    func testTheRootOfAHierarchyIsNeverKilledOrEmptied() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (mounts a tmpfs)") }
        let dir = NSTemporaryDirectory() + "skiff-cgroot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(mount("tmpfs", dir, "tmpfs", 0, nil), 0, String(cString: strerror(errno)))
        defer { umount2(dir, Int32(MNT_DETACH)) }
        let bystander = Process()
        bystander.executableURL = URL(fileURLWithPath: "/bin/sleep")
        bystander.arguments = ["60"]
        try bystander.run()
        defer { bystander.terminate() }
        try "\(bystander.processIdentifier)\n".write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let root = Cgroup2(mountpoint: dir, path: "/")
        XCTAssertThrowsError(try root.killAll()) { XCTAssertTrue("\($0)".contains("the root of a cgroup hierarchy"), "\($0)") }
        XCTAssertThrowsError(try root.remove(createdTop: dir, killRemaining: true))
        usleep(100_000)
        XCTAssertTrue(bystander.isRunning, "the process the root's cgroup.procs lists is alive")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/empty"), "no cgroup below the root was removed")
    }

    func testFrozenStateFromEvents() throws {
        let dir = NSTemporaryDirectory() + "skiff-cgf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "populated 1\nfrozen 1\n".write(toFile: dir + "/cgroup.events", atomically: true, encoding: .utf8)
        XCTAssertTrue(Cgroup2(mountpoint: dir, path: "/").isFrozen())
        try "populated 1\nfrozen 0\n".write(toFile: dir + "/cgroup.events", atomically: true, encoding: .utf8)
        XCTAssertFalse(Cgroup2(mountpoint: dir, path: "/").isFrozen())
    }
}

final class RuntimeUnitTests: XCTestCase {
    func testInitErrorsTravelIntact() throws {
        var e = SkiffError("exec", "/app", errno: ENOENT, detail: "d", hint: "h")
        e = e.wrapped("inner")
        let back = ErrorCodec.decode(ErrorCodec.encode(e))
        XCTAssertEqual(back, e)
        XCTAssertEqual(back.description, e.description)
        // A path with the field separator and the escape character in it does not shift fields.
        let odd = SkiffError("mount", "/a\u{1f}b\u{1b}s\u{1b}", errno: EPERM, detail: "x\u{1f}y", hint: nil).wrapped("c\u{1f}")
        XCTAssertEqual(ErrorCodec.decode(ErrorCodec.encode(odd)), odd)
        XCTAssertEqual(try SyncMessage(decoding: SyncMessage.error(odd).encoded), .error(odd))
        for m in [SyncMessage.pid(42), .mapped, .runHooks, .hooksDone, .seccompFd(7), .seccompDone, .ready] {
            XCTAssertEqual(try SyncMessage(decoding: m.encoded), m)
        }
        XCTAssertThrowsError(try SyncMessage(decoding: "bogus"))
        // The kind crosses the fork too: the shim maps it to a status code.
        let gone = SkiffError.msg(.notExist, "container \"x\" does not exist").wrapped("delete")
        XCTAssertEqual(ErrorCodec.decode(ErrorCodec.encode(gone)).kind, .notExist)
        XCTAssertEqual(ErrorCodec.decode(ErrorCodec.encode(gone)), gone)
    }

    func testIdentifiers() {
        for ok in ["a", "e1", "exec-1a2b", "a.b_c-d", String(repeating: "x", count: 76)] { XCTAssertTrue(Identifier.isValid(ok), ok) }
        for bad in ["", "../x", "a/b", ".x", "x.", "a..b", "a-_b", "é", String(repeating: "x", count: 77)] {
            XCTAssertFalse(Identifier.isValid(bad), bad)
        }
    }

    func testContainerIDs() {
        for ok in ["a", "web-1", "x.y_z+1", String(repeating: "a", count: 200)] { XCTAssertNoThrow(try StateStore.validateID(ok)) }
        for bad in ["", ".", "..", "a/b", "a b", "é", "../x"] { XCTAssertThrowsError(try StateStore.validateID(bad), bad) }
    }

    func testDefaultSpecIsValid() throws {
        let bundle = NSTemporaryDirectory() + "skiff-ds-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bundle) }
        for rootless in [false, true] {
            let spec = DefaultSpec.make(rootless: rootless)
            XCTAssertNoThrow(try Validation.validate(spec, bundle: bundle))
        }
    }

    func testExecutableLookup() throws {
        XCTAssertEqual(try InitProcess.resolveExecutable("sh", env: ["PATH=/nonexistent:/bin"]), "/bin/sh")
        XCTAssertThrowsError(try InitProcess.resolveExecutable("nope-\(UUID())", env: ["PATH=/bin"])) { e in
            XCTAssertTrue("\(e)".contains("executable file not found in $PATH"))
        }
        let plain = NSTemporaryDirectory() + "skiff-noexec-\(UUID())"
        FileManager.default.createFile(atPath: plain, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        defer { try? FileManager.default.removeItem(atPath: plain) }
        XCTAssertThrowsError(try InitProcess.resolveExecutable(plain, env: [])) { e in
            XCTAssertTrue("\(e)".contains("permission denied"), "\(e)")
        }
    }
}

/// Records what `Rootfs` asks of the kernel: clones return real O_PATH fds of their source (so
/// the in-root resolution that follows works on the temp dir), new filesystems a placeholder,
/// and nothing is mounted. mknod is refused as for a caller without CAP_MKNOD, unless `realNodes`.
final class RecordingMounts: MountCalls {
    var log: [String] = []
    let root: String
    let realNodes: Bool
    init(root: String, realNodes: Bool) { self.root = root; self.realNodes = realNodes }

    /// Where a target fd points, relative to the rootfs (a host path otherwise).
    func where_(_ fd: Int32) -> String {
        let p = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "?"
        return p.hasPrefix(root) ? String(p.dropFirst(root.count)).isEmpty ? "/" : String(p.dropFirst(root.count)) : p
    }

    func cloneTree(_ dirfd: Int32, _ path: String, recursive: Bool, what: String) throws -> Int32 {
        log.append("clone \(what)\(recursive ? " recursive" : "")")
        let fd = path.isEmpty ? dup(dirfd) : open(path, InRoot.oPath | O_CLOEXEC)
        if fd < 0 { throw SkiffError.sys("clone", what) }
        return fd
    }

    func newFilesystem(type: String, source: String?, options: [String], superblockFlags: [String], attrs: UInt64, what: String) throws -> Int32 {
        log.append("new \(type) \(what)\(options.isEmpty ? "" : " " + options.joined(separator: ","))")
        return open("/dev/null", InRoot.oPath | O_CLOEXEC)
    }

    func setAttributes(_ fd: Int32, set: UInt64, clear: UInt64, propagation: UInt64, recursive: Bool, what: String) throws {
        log.append("attr \(what) set=\(set) clear=\(clear) propagation=\(propagation)\(recursive ? " recursive" : "")")
    }

    func attach(_ mount: Int32, to target: Int32, what: String) throws {
        log.append("attach \(what) on \(where_(target))")
    }

    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) throws {
        log.append("mount \(target) flags=\(flags)")
    }

    func mknodat(_ dirfd: Int32, _ name: String, _ mode: mode_t, _ dev: dev_t) -> Int32 {
        log.append("mknod \(name)")
        if realNodes { return Glibc.mknodat(dirfd, name, mode, dev) }
        errno = EPERM
        return -1
    }
}

/// `Rootfs` through the mount seam, without root: the order of the calls, where each lands, and
/// that a missing CAP_MKNOD turns into binds of the host's nodes; as root, also the masked and
/// read-only paths of `finalize`.
final class RootfsSeamTests: XCTestCase {
    func testMountOrderTargetsAndMasks() throws {
        let base = NSTemporaryDirectory() + "skiff-seam-\(UUID().uuidString)"
        let rootfs = base + "/rootfs", data = base + "/data"
        defer { try? FileManager.default.removeItem(atPath: base) }
        for d in [rootfs + "/etc", rootfs + "/proc/sys", data] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "s".write(toFile: rootfs + "/etc/secret", atomically: true, encoding: .utf8)
        var spec = Spec()
        spec.root = Root(path: rootfs, readonly: true)
        spec.mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid"]),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["mode=755"]),
            Mount(destination: "/data", type: "bind", source: data, options: ["rbind", "ro"])
        ]
        var linux = Linux()
        linux.maskedPaths = ["/etc/secret", "/proc/missing"]
        linux.readonlyPaths = ["/proc/sys"]
        spec.linux = linux
        let rec = RecordingMounts(root: rootfs, realNodes: geteuid() == 0)
        var r = Rootfs(rootfs: rootfs, spec: spec, inUserNamespace: false, ownCgroupNamespace: true, hostCgroupDir: nil)
        r.calls = rec
        try r.prepare()
        // The rootfs bound onto itself first, then the config's mounts in their order, each on
        // the directory resolved inside the rootfs.
        let attaches = rec.log.filter { $0.hasPrefix("attach") }
        XCTAssertEqual(
            Array(attaches.prefix(4)), ["attach \(rootfs) on /", "attach /proc on /proc", "attach /dev on /dev", "attach /data on /data"], "\(rec.log)")
        XCTAssertTrue(rec.log.first?.hasPrefix("mount / flags=") == true, "propagation of / first (rslave): \(rec.log)")
        XCTAssertTrue(rec.log.contains("new proc /proc"), "\(rec.log)")
        XCTAssertTrue(rec.log.contains("new tmpfs /dev mode=755"), "\(rec.log)")
        XCTAssertTrue(rec.log.contains("clone \(data) recursive"), "rbind: \(rec.log)")
        XCTAssertTrue(rec.log.contains { $0.hasPrefix("attr \(data) set=1 ") }, "ro on the bind: \(rec.log)")
        // Default devices: mknod'ed, or without CAP_MKNOD bound from the host onto files in /dev.
        XCTAssertTrue(rec.log.contains("mknod null"), "\(rec.log)")
        if geteuid() != 0 { XCTAssertTrue(rec.log.contains("attach /dev/null on /dev/null"), "\(rec.log)") }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: rootfs + "/dev/fd"), "/proc/self/fd")

        // finalize: the root read-only, read-only paths bound onto themselves read-only, masks:
        // a file covered with /dev/null, a missing path skipped. Needs the real /dev/null node.
        guard geteuid() == 0 else { return }
        rec.log = []
        let rootFd = open(rootfs, InRoot.oPath | O_DIRECTORY | O_CLOEXEC)
        defer { close(rootFd) }
        try r.finalize(root: rootFd)
        XCTAssertEqual(rec.log.first.map { $0.hasPrefix("attr / set=1 ") }, true, "\(rec.log)")
        XCTAssertTrue(rec.log.contains("attach /proc/sys on /proc/sys"), "\(rec.log)")
        XCTAssertTrue(rec.log.contains("attach /etc/secret on /etc/secret"), "\(rec.log)")
        XCTAssertFalse(rec.log.contains { $0.contains("/proc/missing") }, "\(rec.log)")
    }
}

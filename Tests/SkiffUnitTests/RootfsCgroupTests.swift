import XCTest
import Foundation
import SkiffSys
@testable import SkiffRootfs
@testable import SkiffCgroups
@testable import SkiffRuntime
import SkiffSpec

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

    func testSymlinksStayInsideTheRoot() throws {
        XCTAssertEqual(try SecurePath.resolveInRoot(root: root, "/abs/passwd"), "/etc/passwd")
        XCTAssertEqual(try SecurePath.resolveInRoot(root: root, "/up/passwd"), "/etc/passwd")
        XCTAssertEqual(try SecurePath.resolveInRoot(root: root, "/../../etc/../../x"), "/x")
        XCTAssertEqual(try SecurePath.resolveInRoot(root: root, "/chain/y"), "/etc/x/y")
        XCTAssertEqual(try SecurePath.resolve(root: root, "/abs"), root + "/etc")
        XCTAssertThrowsError(try SecurePath.resolveInRoot(root: root, "/loop/x")) { e in
            XCTAssertTrue("\(e)".contains("too many levels of symbolic links"), "\(e)")
        }
    }

    func testMkdirAllCreatesInsideTheRoot() throws {
        let made = try SecurePath.mkdirAll(root: root, "/up/new/dir")
        XCTAssertEqual(made, root + "/etc/new/dir")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/etc/new/dir"))
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
        XCTAssertEqual(try Cgroup2.resolve(cgroupsPath: "machine-web.slice:docker:abc", id: "x", systemd: true, own: "/"),
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
    func testInitErrorsTravelIntact() {
        var e = SkiffError("exec", "/app", errno: ENOENT, detail: "d", hint: "h")
        e = e.wrapped("inner")
        let back = InitError.decode(InitError.encode(e))
        XCTAssertEqual(back, e)
        XCTAssertEqual(back.description, e.description)
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

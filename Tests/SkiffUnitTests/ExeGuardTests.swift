import XCTest
import Glibc
@testable import SkiffSys

/// ExeGuard's pieces that need no re-exec of the test process.
final class ExeGuardTests: XCTestCase {
    /// The fallback where overlayfs is not available: a sealed memfd copy, byte for byte the
    /// binary, that nobody can write (the container would reach this file, not the original).
    func testSealedCopyIsExactAndUnwritable() throws {
        let src = "/proc/self/exe"
        let fd = try ExeGuard.sealedCopy(of: src)
        defer { close(fd) }
        let r = try FS.open("/proc/self/fd/\(fd)", O_RDONLY)
        defer { close(r) }
        let copy = try FS.readAll(fd: r)
        XCTAssertEqual(copy, try FS.readBytes(src))
        let w = open("/proc/self/fd/\(fd)", O_WRONLY | O_CLOEXEC)
        if w >= 0 {  // opening is allowed; the seals refuse the write itself
            defer { close(w) }
            XCTAssertEqual(Glibc.write(w, "x", 1), -1)
            XCTAssertEqual(errno, EPERM)
        } else {
            XCTAssertEqual(errno, EPERM)
        }
        XCTAssertEqual(ftruncate(fd, 0), -1, "shrink is sealed")
    }

    /// A detached overlayfs view of a directory: the file is there, read-only whatever the
    /// permissions, and reached by no mount table.
    func testOverlayViewIsReadOnlyAndDetached() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting overlayfs needs root") }
        let dir = "/tmp/skiff-exeguard-\(getpid())"
        try FS.mkdirAll(dir)
        defer { _ = unlink(dir + "/tool"); _ = rmdir(dir) }
        try FS.writeFile(dir + "/tool", "#!/bin/sh\n", mode: 0o755)
        let view = try ExeGuard.overlayView(of: dir + "/tool")
        defer { close(view.fd) }
        XCTAssertEqual(view.name, "tool")
        let f = open("/proc/self/fd/\(view.fd)/tool", O_WRONLY | O_CLOEXEC)
        XCTAssertEqual(f, -1)
        XCTAssertEqual(errno, EROFS)
        XCTAssertEqual(try FS.readString("/proc/self/fd/\(view.fd)/tool"), "#!/bin/sh\n")
        let mounts = try FS.readString("/proc/self/mountinfo")
        XCTAssertFalse(mounts.contains(dir), "the view is not attached anywhere")
    }

    func testLayerPathsAreEscaped() {
        XCTAssertEqual(ExeGuard.escapeLayer("/a:b\\c,d"), "/a\\:b\\\\c\\,d")
    }
}

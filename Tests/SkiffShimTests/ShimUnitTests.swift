import Glibc
import XCTest
import SkiffSys
import SkiffWire
import SkiffTTRPC
@testable import SkiffShim

final class ShimUnitTests: XCTestCase {
    /// Error kinds map to ttrpc codes in one place (containerd's errgrpc), never by their text.
    func testErrorKindsMapToStatusCodes() {
        let cases: [(SkiffError, StatusCode)] = [
            (.msg(.notExist, "gone"), .notFound), (.msg(.exists, "twice"), .alreadyExists),
            (.msg(.notRunning, "stopped"), .failedPrecondition), (.msg(.paused, "frozen"), .failedPrecondition),
            (.msg(.invalid, "bad config"), .invalidArgument), (.msg(.unsupported, "no CRIU"), .unimplemented),
            (SkiffError("open", "/x", errno: EACCES), .permissionDenied),
            // Text alone means nothing: a message that reads "does not exist" but has no kind.
            (.msg("container \"c\" does not exist"), .unknown)
        ]
        for (e, code) in cases {
            XCTAssertEqual(TaskService.status(e).code, code, "\(e)")
            XCTAssertEqual(TaskService.status(e).message, "\(e)")
        }
        XCTAssertEqual(ExternalBackend.kind(ofRuncMessage: "container \"c\" does not exist"), .notExist)
        XCTAssertEqual(ExternalBackend.kind(ofRuncMessage: "container not running"), .notRunning)
    }

    func testArgumentsAsContainerdWritesThem() throws {
        let start = try ShimArguments.parse([
            "-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock",
            "-publish-binary", "/usr/bin/containerd", "-id", "abc", "-debug", "start"
        ])
        XCTAssertEqual(start.namespace, "k8s.io")
        XCTAssertEqual(start.address, "/run/containerd/containerd.sock")
        XCTAssertEqual(start.publishBinary, "/usr/bin/containerd")
        XCTAssertEqual(start.id, "abc")
        XCTAssertTrue(start.debug)
        XCTAssertEqual(start.action, "start")
        // Go flag spellings: --name value, -name=value, boolean -debug=false.
        let del = try ShimArguments.parse(["--namespace=default", "--id", "x", "-bundle=/b", "-debug=false", "delete"])
        XCTAssertEqual(del.namespace, "default")
        XCTAssertEqual(del.bundle, "/b")
        XCTAssertFalse(del.debug)
        XCTAssertEqual(del.action, "delete")
        // The daemon's own command line has no action and keeps what it needs.
        let daemon = try ShimArguments.parse(start.daemonArguments)
        XCTAssertEqual(daemon.action, "")
        XCTAssertEqual(daemon.id, "abc")
        XCTAssertEqual(daemon.address, start.address)
        XCTAssertTrue(daemon.debug)
        XCTAssertThrowsError(try ShimArguments.parse(["-bogus", "start"])) { XCTAssertTrue("\($0)".contains("-bogus")) }
        XCTAssertThrowsError(try ShimArguments.parse(["-id"])) { XCTAssertTrue("\($0)".contains("needs an argument")) }
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1000)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // Incremental updates give the same digest as one.
        var h = SHA256()
        for chunk in stride(from: 0, to: 1000, by: 37) { h.update([UInt8](repeating: UInt8(ascii: "a"), count: min(37, 1000 - chunk))) }
        XCTAssertEqual(hexString(h.finalize()), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testSocketAddressFollowsContainerdsConvention() throws {
        // sha256("/run/containerd/containerd.sock/default/c1"), as containerd-shim-runc-v2 computes it.
        XCTAssertEqual(
            ShimAddress.socketPath(containerdAddress: "/run/containerd/containerd.sock", namespace: "default", group: "c1"),
            "/run/containerd/s/d25aa4ef11a84e954e74a5bcff06557d0b6ea8d0c00243896f29826694bbd888")
        XCTAssertLessThanOrEqual(ShimAddress.socketPath(containerdAddress: "/x", namespace: "n", group: "g").utf8.count, 106)
        // Grouping: a pod's containers share the sandbox's shim.
        let dir = "/tmp/skiff-shimunit-\(getpid())"
        try FS.mkdirAll(dir)
        defer { try? FS.removeAll(dir) }
        try FS.writeFile(dir + "/config.json", #"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#)
        XCTAssertEqual(ShimAddress.group(bundle: dir, id: "c2"), "pod1")
        try FS.writeFile(dir + "/config.json", #"{"annotations":{"io.containerd.runc.v2.group":"g7"}}"#)
        XCTAssertEqual(ShimAddress.group(bundle: dir, id: "c2"), "g7")
        try FS.writeFile(dir + "/config.json", "not json")
        XCTAssertEqual(ShimAddress.group(bundle: dir, id: "c2"), "c2")
    }

    func testExitRecordsAndStatuses() {
        let r = ExitRecord(pid: 42, status: 137, seconds: 1_700_000_000, nanos: 5)
        XCTAssertEqual(ExitRecord.parse(r.text), r)
        XCTAssertNil(ExitRecord.parse("garbage"))
        XCTAssertEqual(shimExitStatus(7 << 8), 7, "exit(7)")
        XCTAssertEqual(shimExitStatus(9), 137, "killed by SIGKILL = 128 + 9")
        XCTAssertEqual(ShimContainer.exitFile(bundle: "/b", execID: ""), "/b/init.exit")
        XCTAssertEqual(ShimContainer.exitFile(bundle: "/b", execID: "e1"), "/b/exec-e1.exit")
    }
}

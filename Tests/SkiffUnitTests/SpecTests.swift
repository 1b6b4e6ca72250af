import XCTest
import Foundation
@testable import SkiffSpec
@testable import SkiffSys

final class SpecTests: XCTestCase {
    let bundle = NSTemporaryDirectory() + "skiff-unit-\(UUID().uuidString)"

    override func setUpWithError() throws {
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: bundle) }

    func decode(_ json: String) throws -> Spec {
        try JSON.decode(Spec.self, from: Array(json.utf8), what: "config")
    }

    let minimal =
        #"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},"linux":{"namespaces":[{"type":"mount"}]}}"#

    func testMinimalConfigValidates() throws {
        let s = try decode(minimal)
        XCTAssertNoThrow(try Validation.validate(s, bundle: bundle))
        XCTAssertEqual(s.process?.args, ["sh"])
    }

    func testUnknownFieldsAreIgnored() throws {
        let s = try decode(#"{"ociVersion":"1.2.0","futureField":{"x":1},"root":{"path":"rootfs","later":true}}"#)
        XCTAssertEqual(s.root?.path, "rootfs")
    }

    func testMalformedJSONNamesTheProblem() {
        XCTAssertThrowsError(try decode(#"{"ociVersion": "#)) { e in
            XCTAssertTrue("\(e)".contains("malformed JSON"), "\(e)")
        }
        XCTAssertThrowsError(try decode(#"{"ociVersion": 5}"#)) { e in
            XCTAssertTrue("\(e)".contains("ociVersion"), "\(e)")
        }
        XCTAssertThrowsError(try decode(#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"gid":0}}}"#)) { e in
            XCTAssertTrue("\(e)".contains("process.user.uid"), "\(e)")
        }
    }

    func testVersions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.2.1", "1.10.0-rc.1"] { XCTAssertNoThrow(try Validation.validateVersion(ok), ok) }
        for bad in ["", "1", "1.0", "x.y.z", "2.0.0", "0.9.0", "1..0"] { XCTAssertThrowsError(try Validation.validateVersion(bad), bad) }
    }

    /// runtime-spec: a capability that cannot be granted is a warning, not an error (runc, crun).
    func testUnknownCapabilitiesAreNotAnError() throws {
        for caps in [#"["CAP_NOPE"]"#, #"["chown"]"#, #"["cap_chown", "CAP_KILL"]"#] {
            let s = try decode(
                #"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":"# + caps + "}}}")
            XCTAssertNoThrow(try Validation.validate(s, bundle: bundle), caps)
        }
        XCTAssertNil(CapabilityNames.number("chown"), "only the spec's spelling")
        XCTAssertEqual(CapabilityNames.number("CAP_KILL"), 5)
    }

    func testValidationRejectsWithClearMessages() throws {
        let cases: [(String, String)] = [
            (#""process":{"cwd":"rel","user":{"uid":0,"gid":0}}"#, "process.cwd \"rel\" is not an absolute path"),
            (#""process":{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_X","soft":1,"hard":1}]}"#, "unknown rlimit type"),
            (#""process":{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","soft":9,"hard":1}]}"#, "exceeds hard limit"),
            (#""process":{"cwd":"/","user":{"uid":0,"gid":0},"env":["NOEQUALS"]}"#, "is not KEY=VALUE"),
            (#""mounts":[{"destination":"tmp","type":"tmpfs"}]"#, "is not an absolute path"),
            (#""linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#, "duplicate pid"),
            (#""linux":{"namespaces":[{"type":"bogus"}]}"#, "unknown namespace type"),
            (#""linux":{"namespaces":[{"type":"user"}]}"#, "needs linux.uidMappings"),
            (#""linux":{"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#, "there is no user namespace"),
            (#""linux":{"timeOffsets":{"monotonic":{"secs":1}}}"#, "needs a time namespace"),
            (#""hostname":"h","linux":{"namespaces":[{"type":"mount"}]}"#, "no new uts namespace"),
            (#""linux":{"devices":[{"type":"c","path":"/dev/x"}]}"#, "major and minor are required"),
            (#""linux":{"devices":[{"type":"q","path":"/dev/x","major":1,"minor":1}]}"#, "unknown type"),
            (#""linux":{"rootfsPropagation":"sideways"}"#, "rootfsPropagation"),
            (#""hooks":{"poststop":[{"path":"/bin/true","timeout":0}]}"#, "timeout must be > 0")
        ]
        for (fragment, expected) in cases {
            let s = try decode(#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"# + fragment + "}")
            XCTAssertThrowsError(try Validation.validate(s, bundle: bundle), fragment) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(fragment): \(e)")
            }
        }
    }

    func testMissingRootfsNamesThePath() throws {
        let s = try decode(#"{"ociVersion":"1.0.0","root":{"path":"nothere"}}"#)
        XCTAssertThrowsError(try Validation.validate(s, bundle: bundle)) { e in
            XCTAssertTrue("\(e)".contains("\(bundle)/nothere"), "\(e)")
            XCTAssertTrue("\(e)".contains("no such file or directory"), "\(e)")
        }
    }

    func testMountOptions() throws {
        var m = try MountOptions.parse(["rbind", "ro", "nosuid", "rprivate", "mode=755", "size=64k"])
        XCTAssertEqual(m.flags, MountOptions.BIND | MountOptions.REC | MountOptions.RDONLY | MountOptions.NOSUID)
        XCTAssertEqual(m.propagation, [MountOptions.PRIVATE | MountOptions.REC])
        XCTAssertEqual(m.dataString, "mode=755,size=64k")
        XCTAssertTrue(m.isRecursiveBind)
        m = try MountOptions.parse(["ro", "rw", "noexec", "exec", "nodev"])
        XCTAssertEqual(m.flags, MountOptions.NODEV, "later options win")
        m = try MountOptions.parse(["rro", "rnosuid", "idmap"])
        XCTAssertEqual(m.recursiveSet, 0x1 | 0x2)
        XCTAssertTrue(m.idmap)
        XCTAssertThrowsError(try MountOptions.parse([""]))
    }

    func testStateRecordRoundTrip() throws {
        let r = ContainerRecord(
            id: "c", ociVersion: "1.0.0", bundle: "/b", rootfs: "/b/rootfs", pid: 42, startTime: 7,
            created: "2026-01-01T00:00:00Z", annotations: ["a": "b"], cgroupPath: "/sys/fs/cgroup/c",
            poststart: nil, poststop: [Hook(path: "/bin/true", args: nil, env: nil, timeout: 3)],
            started: true, ownPidNamespace: true)
        let back = try JSON.decode(ContainerRecord.self, from: JSON.encode(r), what: "state")
        XCTAssertEqual(back.pid, 42)
        XCTAssertEqual(back.poststop?.first?.timeout, 3)
        XCTAssertEqual(back.annotations, ["a": "b"])
    }

    func testOCIStateOmitsZeroPidForHooksAndKeepsOrderlessKeys() throws {
        let s = OCIState(ociVersion: "1.0.0", id: "x", status: "stopped", pid: nil, bundle: "/b")
        let text = try JSON.encodeString(s)
        XCTAssertFalse(text.contains("pid"))
        XCTAssertTrue(text.contains(#""status":"stopped""#))
    }
}

final class SysTests: XCTestCase {
    func testSignalNames() throws {
        XCTAssertEqual(try Signals.parse("KILL"), 9)
        XCTAssertEqual(try Signals.parse("SIGKILL"), 9)
        XCTAssertEqual(try Signals.parse("sigterm"), 15)
        XCTAssertEqual(try Signals.parse("9"), 9)
        XCTAssertEqual(try Signals.parse("RTMIN+2"), 36)
        XCTAssertEqual(try Signals.parse("SIGRTMAX"), 64)
        XCTAssertThrowsError(try Signals.parse("NOPE"))
        XCTAssertEqual(try Signals.parse("0"), 0, "signal 0 checks the container is there, as in runc")
        XCTAssertThrowsError(try Signals.parse("-1"))
        XCTAssertThrowsError(try Signals.parse("65"))
    }

    func testErrorText() {
        var e = SkiffError("exec", "/app/start.sh", errno: ENOENT)
        e = e.wrapped("create \"web\"")
        XCTAssertEqual(e.description, #"create "web": exec "/app/start.sh": no such file or directory"#)
        let h = SkiffError("mount", "/x", errno: EPERM, hint: "try this")
        XCTAssertEqual(h.description, #"mount "/x": operation not permitted (hint: try this)"#)
    }

    func testExitCodes() {
        XCTAssertEqual(exitCode(fromWaitStatus: 3 << 8), 3)
        XCTAssertEqual(exitCode(fromWaitStatus: 9), 137)
        XCTAssertEqual(exitCode(fromWaitStatus: 15), 143)
    }

    func testRFC3339() {
        XCTAssertEqual(rfc3339(timespec(tv_sec: 0, tv_nsec: 0)), "1970-01-01T00:00:00Z")
        XCTAssertEqual(rfc3339(timespec(tv_sec: 1_700_000_000, tv_nsec: 120_000_000)), "2023-11-14T22:13:20.12Z")
        // The date arithmetic agrees with gmtime_r around leap days, century years and before 1970.
        var seconds: [Int] = [-1, -86_400, -2_208_988_800, 951_782_399, 951_782_400, 4_107_542_399, 4_107_542_400, 253_402_300_799]
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            seconds.append(Int(x % 20_000_000_000) - 5_000_000_000)
        }
        for sec in seconds {
            var t = sec
            var tmv = tm()
            gmtime_r(&t, &tmv)
            let want = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec)
            XCTAssertEqual(rfc3339(timespec(tv_sec: sec, tv_nsec: 0)), want, "\(sec)")
        }
    }

    /// The areas the init blanks, read from argv and AT_EXECFN, are the kernel's (/proc/self/stat).
    func testArgumentAndEnvironmentAreasAreTheKernels() throws {
        let areas = try XCTUnwrap(Proc.areasFromArgv(), "argv and the auxiliary vector did not line up")
        let f = try XCTUnwrap(Proc.statFields(of: "self"))
        XCTAssertEqual([areas.0, areas.1, areas.2, areas.3], f[45...48].map { UInt($0) ?? 0 })
    }

    func testSplitASCIIMatchesSplit() {
        let pieces = [" ", "  ", "a", "é", "\\040", "-", "😀", "\n", "shared:1"]
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<5000 {
            var s = ""
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            for k in 0..<Int(x % 12) { s += pieces[Int((x >> (4 * UInt64(k))) % UInt64(pieces.count))] }
            XCTAssertEqual(splitASCII(s, UInt8(ascii: " ")), s.split(separator: " "), s)
            XCTAssertEqual(splitASCII(s.dropFirst(), UInt8(ascii: "\n")), s.dropFirst().split(separator: "\n"), s)
        }
    }

    func testCleanAndAbsolute() {
        XCTAssertEqual(FS.clean("/a/./b/../c//d/"), "/a/c/d")
        XCTAssertEqual(FS.clean("/../.."), "/")
        XCTAssertEqual(FS.absolute("x/y", base: "/base"), "/base/x/y")
        // Paths found clean by the byte check come back as they are; every path agrees with
        // the lexical rule (split on "/", drop "." and empty parts, ".." removes one).
        func reference(_ p: String) -> String {
            var out: [Substring] = []
            for c in p.utf8.split(separator: UInt8(ascii: "/")).map({ Substring($0) }) where c != "." {
                if c == ".." { if !out.isEmpty { out.removeLast() } } else { out.append(c) }
            }
            return "/" + out.joined(separator: "/")
        }
        let pieces = ["/", ".", "..", "...", "a", ".a", "a.", "é", "//", "\u{301}", "\u{600}"]
        var x: UInt64 = 0x2545_F491_4F6C_DD1D
        for _ in 0..<20000 {
            var p = ""
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            for k in 0..<Int(x % 9) { p += pieces[Int((x >> (8 + 4 * UInt64(k))) % UInt64(pieces.count))] }
            XCTAssertEqual(FS.clean(p), reference(p), p)
        }
        for p in ["/", "/a", "/a/b...c/...", "/.a/b."] { XCTAssertTrue(FS.isClean(p), p) }
        for p in ["", "a", "/a/", "//", "/.", "/..", "/a/./b", "/a/../b", "/a//b"] { XCTAssertFalse(FS.isClean(p), p) }
    }

    func testAtomicWriteLeavesNoTempFile() throws {
        let dir = NSTemporaryDirectory() + "skiff-fs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FS.writeFileAtomic(dir + "/state.json", Array("one".utf8))
        try FS.writeFileAtomic(dir + "/state.json", Array("two".utf8))
        XCTAssertEqual(try FS.readString(dir + "/state.json"), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["state.json"])
    }
}

import Foundation
import XCTest
import SkiffSys
import SkiffCgroups
import SkiffSpec

/// The D-Bus client behind the systemd cgroup driver, against a real message bus (a private
/// dbus-daemon of the test's own): authentication, Hello, calls with arguments of every type the
/// driver sends, an error reply, and a signal read while waiting. systemd itself is exercised in
/// the cgroup v2 guest (CgroupV2GuestTests), where it can run.
final class DBusTests: XCTestCase {
    func testCallsErrorsAndSignalsAgainstADBusDaemon() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dbus-daemon") else { throw XCTSkip("dbus-daemon not installed (apt-get install dbus)") }
        let dir = NSTemporaryDirectory() + "/skiff-dbus-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sock = dir + "/bus"
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/dbus-daemon")
        daemon.arguments = ["--session", "--nofork", "--nopidfile", "--address=unix:path=" + sock]
        try daemon.run()
        defer { daemon.terminate(); daemon.waitUntilExit() }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: sock) { usleep(10_000) }

        let c = try DBusConnection(path: sock, bus: true)
        // A method with a string answer, and one whose arguments are the driver's kinds of value.
        let id = try c.call(path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "GetId", destination: "org.freedesktop.DBus")
        XCTAssertEqual(id.first?.text?.count, 32, "\(id)")
        let owner = try c.call(
            path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "NameHasOwner", destination: "org.freedesktop.DBus",
            [.string("org.freedesktop.DBus")])
        XCTAssertEqual(owner.first.flatMap { if case .bool(let b) = $0 { return b } else { return nil } }, true)
        // An error reply names the method, the error and its text.
        XCTAssertThrowsError(
            try c.call(path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "NoSuchMethod", destination: "org.freedesktop.DBus")
        ) { error in
            XCTAssertTrue("\(error)".contains("NoSuchMethod") && "\(error)".contains("org.freedesktop.DBus.Error.UnknownMethod"), "\(error)")
        }
        // The bus checks a(sv) and variants of b, t, au and s against the signature we send:
        // a malformed one would be refused (or the connection dropped).
        let props = DBusValue.array(
            element: "(sv)",
            [
                .structure([.string("Delegate"), .variant(.bool(true))]), .structure([.string("MemoryMax"), .variant(.uint64(31_457_280))]),
                .structure([.string("PIDs"), .variant(.array(element: "u", [.uint32(1)]))]),
                .structure([.string("Slice"), .variant(.string("system.slice"))])
            ])
        XCTAssertThrowsError(
            try c.call(
                path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "UpdateActivationEnvironment", destination: "org.freedesktop.DBus",
                [props])
        ) { error in
            // The bus read the whole message and answered for the method (a wrong signature), not the framing.
            XCTAssertTrue("\(error)".contains("org.freedesktop.DBus.Error.InvalidArgs"), "\(error)")
        }
        // A signal that arrives while we wait: NameOwnerChanged for a name we take.
        try c.call(
            path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "AddMatch", destination: "org.freedesktop.DBus",
            [.string("type='signal',member='NameOwnerChanged',arg0='org.skiff.Test'")])
        try c.call(
            path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "RequestName", destination: "org.freedesktop.DBus",
            [.string("org.skiff.Test"), .uint32(0)])
        let sig = try c.waitSignal(member: "NameOwnerChanged", timeoutMs: 5000) { $0.body.first?.text == "org.skiff.Test" }
        XCTAssertEqual(sig.body.count, 3)
    }

    /// A peer that accepts and never answers, at authentication or after it, fails the call in
    /// the time given (it used to block in read(2) forever, holding the container's lock).
    func testAPeerThatNeverAnswersTimesOut() throws {
        let dir = NSTemporaryDirectory() + "/skiff-dbus-mute-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for mode in ["mute", "auth-only"] {
            let sock = dir + "/" + mode
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            server.arguments = [
                "-c",
                """
                import socket, sys, time
                s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
                c, _ = s.accept()
                if sys.argv[2] == "auth-only":
                    c.recv(4096); c.sendall(b"OK 0123456789abcdef0123456789abcdef\\r\\n")
                time.sleep(30)
                """,
                sock, mode
            ]
            try server.run()
            defer { server.terminate(); server.waitUntilExit() }
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: sock) { usleep(10_000) }
            let t0 = Date()
            XCTAssertThrowsError(
                try {
                    let c = try DBusConnection(path: sock, bus: false, timeoutMs: 500)
                    try c.call(path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager", member: "Subscribe", timeoutMs: 500)
                }()
            ) { error in XCTAssertTrue("\(error)".contains("timed out") || "\(error)".contains("in time"), "\(mode): \(error)") }
            XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "\(mode): the timeout fired")
        }
    }

    /// Limits from an untrusted config never trap (the shim runs create in-process).
    func testHugeLimitsAreClampedNotTrapped() throws {
        var r = Resources()
        r.cpu = CPU()
        r.cpu?.quota = 20_000_000_000_000
        r.cpu?.period = 1
        r.memory = Memory()
        r.memory?.limit = Int64.max
        let props = try Systemd.resourceProperties(r)
        XCTAssertEqual(props.first { $0.0 == "CPUQuotaPerSecUSec" }?.1.number, UInt64.max)
        XCTAssertEqual(props.first { $0.0 == "MemoryMax" }?.1.number, UInt64(Int64.max))
    }

    /// The unit's properties read values as the cgroup files do: 0 leaves a limit as it is (a
    /// memory limit of 0 became MemoryMax=0, an OOM kill at once; a pids limit of 0 lifted the
    /// limit), a period of 0 is the default one, and what the files refuse is refused before
    /// systemd is asked.
    func testUnitPropertiesReadValuesAsTheCgroupFilesDo() throws {
        var r = Resources()
        r.memory = Memory()
        r.memory?.limit = 0
        r.pids = Pids(limit: 0)
        r.cpu = CPU()
        r.cpu?.quota = 50_000
        r.cpu?.period = 0
        let props = try Systemd.resourceProperties(r)
        XCTAssertEqual(props.map(\.0), ["CPUQuotaPerSecUSec"])
        XCTAssertEqual(props.first?.1.number, 500_000)
        r.memory?.limit = -5
        XCTAssertThrowsError(try Systemd.resourceProperties(r)) { XCTAssertTrue("\($0)".contains("memory.limit -5 is not a size"), "\($0)") }
    }

    /// runc's mapping of cgroupsPath onto unit and slice, and of limits onto unit properties.
    func testSystemdUnitNamesAndProperties() throws {
        XCTAssertTrue(try Systemd.unit(cgroupsPath: "system.slice:skiff:sd1", id: "x") == ("skiff-sd1.scope", "system.slice"))
        XCTAssertTrue(try Systemd.unit(cgroupsPath: ":cri-containerd:abc", id: "x") == ("cri-containerd-abc.scope", "system.slice"))
        XCTAssertTrue(try Systemd.unit(cgroupsPath: "kubepods.slice::pod1.slice", id: "x") == ("pod1.slice", "kubepods.slice"))
        XCTAssertTrue(try Systemd.unit(cgroupsPath: nil, id: "c1") == ("skiff-c1.scope", "system.slice"))
        XCTAssertThrowsError(try Systemd.unit(cgroupsPath: "/a/b", id: "x"))
        // The cgroup directory the same cgroupsPath names, and what is refused: these become path
        // components and D-Bus arguments.
        func path(_ p: String) throws -> String { try Cgroup2.resolve(cgroupsPath: p, id: "x", systemd: true, own: "/") }
        XCTAssertEqual(try path("system.slice:skiff:sd1"), "/system.slice/skiff-sd1.scope")
        XCTAssertEqual(try path("kubepods-burstable.slice:cri-containerd:abc"), "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope")
        XCTAssertEqual(try path("-.slice:p:n"), "/p-n.scope")
        for bad in [
            "a--b.slice:p:n", "-a.slice:p:n", "a-.slice:p:n", "system.slice:../..:x", "../../tmp.slice:p:n", "system.slice:p:../n", "a/b.slice:p:n",
            "system.slice:p:", "notaslice:p:n", "a:b"
        ] {
            XCTAssertThrowsError(try path(bad), bad)
        }
    }
}

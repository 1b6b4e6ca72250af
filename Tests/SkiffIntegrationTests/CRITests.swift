import Foundation
import XCTest
import Glibc

/// The Kubernetes node path: a private containerd 1.6 with its CRI plugin, runtime handlers
/// `runc` (the baseline) and `skiff` (containerd-shim-skiff-v2, options through ConfigPath),
/// pods on a CNI bridge of the test's own, driven by crictl 1.26 (`../shared/tools/crictl`, or
/// SKIFF_CRICTL, or on PATH). The same flows run on both handlers and must give the same results.
final class CRITests: ImageTestCase {
    var containerd: PrivateContainerd!
    var crictl = ""
    var bridge = ""
    let pauseRef = "docker.io/skiff/pause:test"

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard let c = Env.crictl else {
            throw XCTSkip("crictl not found (../shared/tools/crictl, SKIFF_CRICTL or PATH)")
        }
        crictl = c
        for plugin in ["bridge", "host-local", "loopback"] where !FileManager.default.isExecutableFile(atPath: "/usr/lib/cni/" + plugin) {
            throw XCTSkip("CNI plugin \(plugin) not in /usr/lib/cni (apt-get install containernetworking-plugins)")
        }
        guard Env.which("containerd-shim-runc-v2") != nil, Env.which("runc") != nil else { throw XCTSkip("containerd's runc shim or runc missing") }
        // A bridge and a subnet of this run's own; nothing routes to or from the host.
        let tag = String(work.suffix(6))
        bridge = "skb" + tag
        let octet = Int(tag.prefix(2), radix: 16).map { 100 + $0 % 100 } ?? 150
        let octet2 = Int(tag.suffix(2), radix: 16) ?? 7
        try FileManager.default.createDirectory(atPath: work + "/cni", withIntermediateDirectories: true)
        try """
        {"cniVersion": "0.4.0", "name": "skiff-test-\(tag)", "plugins": [
          {"type": "bridge", "bridge": "\(bridge)", "isGateway": false, "ipMasq": false, "hairpinMode": true,
           "ipam": {"type": "host-local", "dataDir": "\(work!)/cni-ipam", "ranges": [[{"subnet": "10.\(octet).\(octet2).0/24"}]]}}]}
        """.write(toFile: work + "/cni/10-skiff-test.conflist", atomically: true, encoding: .utf8)
        try "SkipUnavailableCgroups = true\n".write(toFile: work + "/skiff-runtime.toml", atomically: true, encoding: .utf8)
        let criConfig = try String(contentsOfFile: Env.packageRoot + "/fixtures/containerd-cri.toml", encoding: .utf8)
            .replacingOccurrences(of: "@PAUSE@", with: pauseRef).replacingOccurrences(of: "@CNI_CONF_DIR@", with: work + "/cni")
            .replacingOccurrences(of: "@SKIFF_RUNTIME_CONFIG@", with: work + "/skiff-runtime.toml")
        containerd = try PrivateContainerd(work: work, extraPath: (Env.shim as NSString).deletingLastPathComponent, cri: criConfig)
        // The pod sandbox image: the test rootfs whose entrypoint is the payload's pause.
        let pauseTar = work + "/pause.tar"
        XCTAssertEqual(
            Cmd.run(
                "/usr/bin/python3",
                [
                    Env.packageRoot + "/fixtures/build-image.py", Env.rootfs, pauseTar, pauseRef,
                    "{\"Entrypoint\": [\"/bin/skiff-payload\", \"pause\"], \"Cmd\": []}"
                ]
            ).code, 0)
        for tar in [pauseTar, image] {
            let r = containerd.ctr(["-n", "k8s.io", "image", "import", tar])
            XCTAssertEqual(r.code, 0, r.stderr)
        }
        for _ in 0..<100 where cri(["info"]).code != 0 { usleep(50_000) }
    }

    override func tearDown() {
        if containerd != nil {
            // Whatever a failed test left: pods first (their containers go with them).
            for pod in cri(["pods", "-q"]).stdout.split(separator: "\n") {
                cri(["stopp", String(pod)]); cri(["rmp", "-f", String(pod)])
            }
            containerd.stop()
        }
        if !bridge.isEmpty { Cmd.run("/usr/sbin/ip", ["link", "del", bridge]) }
        super.tearDown()
        Host.removeContainerdLeftovers(namespace: "k8s.io")
    }

    @discardableResult
    func cri(_ args: [String], stdin: String? = nil, timeout: TimeInterval = 60) -> CmdResult {
        let sock = "unix://" + containerd.sock
        return Cmd.run(
            crictl, ["--runtime-endpoint", sock, "--image-endpoint", sock, "--timeout", "30s"] + args,
            stdin: stdin, timeout: timeout)
    }

    func writeJSON(_ obj: [String: Any], _ name: String) throws -> String {
        let path = work + "/" + name
        try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// pid: 0 shares one pid namespace in the pod (shareProcessNamespace), 1 gives each
    /// container its own.
    func podConfig(_ name: String, pid: Int = 1) throws -> String {
        try writeJSON(
            [
                "metadata": ["name": name, "namespace": "default", "uid": name + "-uid", "attempt": 1],
                "log_directory": work + "/logs/" + name,
                "linux": ["security_context": ["namespace_options": ["pid": pid]]]
            ], name + "-pod.json")
    }

    /// A container of `command` created in the pod (its config written next to the pod's).
    func create(in pod: String, podName: String, _ name: String, _ command: [String]) throws -> String {
        out(cri(["create", pod, try containerConfig(name, command), work + "/" + podName + "-pod.json"]))
    }

    func containerConfig(_ name: String, _ command: [String]) throws -> String {
        try writeJSON(
            [
                "metadata": ["name": name], "image": ["image": ref], "command": command,
                "log_path": name + ".log", "stdin": false, "linux": [String: Any]()
            ], name + "-ctr.json")
    }

    func out(_ r: CmdResult) -> String { r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) }

    func waitState(_ id: String, _ state: String) -> Bool {
        for _ in 0..<200 {
            if cri(["inspect", "-o", "go-template", "--template", "{{.status.state}}", id]).stdout.contains(state) { return true }
            usleep(25_000)
        }
        return false
    }

    /// The node path on both handlers: pod, two containers in it (one shim per pod for skiff),
    /// ps/inspect, exec with and without stdin, logs, stats, a container that exits and is
    /// created again in the same pod, stop/rm, stopp/rmp. The results must be the same.
    func testPodLifecycleIsTheSameOnSkiffAndRunc() throws {
        var seen: [String: [String]] = [:]
        for handler in ["runc", "skiff"] {
            var notes: [String] = []
            let rp = cri(["runp", "--runtime", handler, try podConfig("p-" + handler)])
            let pod = out(rp)
            XCTAssertFalse(pod.isEmpty, "\(handler): runp: \(rp.stderr)")
            if pod.isEmpty { print((try? String(contentsOfFile: work + "/containerd.log", encoding: .utf8))?.suffix(3000) ?? ""); return }
            XCTAssertTrue(out(cri(["inspectp", "-o", "go-template", "--template", "{{.status.state}}", pod])).contains("SANDBOX_READY"))
            let a = try create(in: pod, podName: "p-" + handler, "a-" + handler, ["/bin/sh", "-c", "echo started-a; exec sleep 3017"])
            let b = try create(in: pod, podName: "p-" + handler, "b-" + handler, ["/bin/sh", "-c", "echo started-b; exec sleep 3017"])
            XCTAssertFalse(a.isEmpty || b.isEmpty, "\(handler): create")
            XCTAssertEqual(cri(["start", a]).code, 0)
            XCTAssertEqual(cri(["start", b]).code, 0)
            XCTAssertTrue(waitState(a, "RUNNING") && waitState(b, "RUNNING"), "\(handler): running")
            notes.append("ps: " + String(out(cri(["ps", "-q", "--pod", pod])).split(separator: "\n").count))
            if handler == "skiff" {
                let shims = Host.processes(mentioning: "-id " + pod).filter { pid in
                    let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                    return cmd.contains("containerd-shim-skiff-v2") && !cmd.hasSuffix("start\0")
                }
                XCTAssertEqual(shims.count, 1, "one shim serves the pod's sandbox and both containers")
            }
            var r = cri(["exec", "-s", a, "/bin/sh", "-c", "echo exec-out"])
            notes.append("exec -s: \(r.code) \(out(r))")
            r = cri(["exec", "-s", a, "/bin/sh", "-c", "exit 3"])
            notes.append("exec -s failing: \(r.code) \(r.stderr.contains("exit code 3"))")
            r = cri(["exec", "-i", a, "/bin/sh", "-c", "read x; echo got-$x"], stdin: "line\n")
            notes.append("exec -i: \(r.code) \(out(r))")
            notes.append("logs: " + out(cri(["logs", a])))
            // Stats: every field a CRI client reads is there (cpu and memory too, where the v2
            // hierarchy lacks the controllers).
            r = cri(["stats", "-o", "json", a])
            XCTAssertEqual(r.code, 0, r.stderr)
            if let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                let stat = (obj["stats"] as? [[String: Any]])?.first
            {
                let cpu = stat["cpu"] as? [String: Any], mem = stat["memory"] as? [String: Any]
                XCTAssertNotNil((cpu?["usageCoreNanoSeconds"] as? [String: Any])?["value"], "\(handler): cpu usage: \(r.stdout)")
                XCTAssertNotNil((mem?["workingSetBytes"] as? [String: Any])?["value"], "\(handler): memory working set: \(r.stdout)")
            } else {
                XCTFail("\(handler): stats: \(r.stdout) \(r.stderr)")
            }
            // update (UpdateContainerResources): the runtime's update with the new limits; on this
            // hybrid host runc writes v1 and skiff skips what its v2 hierarchy lacks (configured).
            r = cri(["update", "--cpu-quota", "50000", "--cpu-period", "100000", a])
            notes.append("update: \(r.code)")
            // attach: what the container writes after the attach, until it exits.
            let att = try create(in: pod, podName: "p-" + handler, "att-" + handler, ["/bin/sh", "-c", "sleep 1; echo attached-hi; sleep 0.5"])
            XCTAssertEqual(cri(["start", att]).code, 0)
            XCTAssertTrue(waitState(att, "RUNNING"))
            r = cri(["attach", att], timeout: 30)
            notes.append("attach: \(r.code) \(out(r))")
            XCTAssertTrue(waitState(att, "EXITED"), "\(handler): the attached container exited")
            XCTAssertEqual(cri(["rm", att]).code, 0)
            // port-forward to a port the pod listens on (in its own network namespace).
            let srv = try create(in: pod, podName: "p-" + handler, "srv-" + handler, ["/bin/sh", "-c", "exec nc -ll -p 8080 -e /bin/echo pf-ok"])
            XCTAssertEqual(cri(["start", srv]).code, 0)
            XCTAssertTrue(waitState(srv, "RUNNING"))
            let port = Int.random(in: 30000...39000)
            let pf = Background(
                [crictl, "--runtime-endpoint", "unix://" + containerd.sock, "port-forward", pod, "\(port):8080"],
                log: work + "/pf-\(handler).log")
            var answer = ""
            for _ in 0..<100 where answer.isEmpty {
                usleep(50_000)
                answer = out(
                    Cmd.run(
                        "/usr/bin/python3",
                        [
                            "-c",
                            """
                            import socket, sys
                            try:
                                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2); print(s.recv(100).decode().strip())
                            except OSError: pass
                            """, "\(port)"
                        ]))
            }
            pf.stop(SIGTERM)
            notes.append("port-forward: " + answer)
            XCTAssertEqual(cri(["stop", "-t", "1", srv]).code, 0)
            XCTAssertEqual(cri(["rm", srv]).code, 0)
            // A container that exits, then is created again in the same pod (kubelet's restart).
            let once = try create(in: pod, podName: "p-" + handler, "once-" + handler, ["/bin/sh", "-c", "echo once; exit 7"])
            XCTAssertEqual(cri(["start", once]).code, 0)
            XCTAssertTrue(waitState(once, "EXITED"), "\(handler): exited")
            notes.append("exit code: " + out(cri(["inspect", "-o", "go-template", "--template", "{{.status.exitCode}}", once])))
            XCTAssertEqual(cri(["rm", once]).code, 0)
            let again = try create(in: pod, podName: "p-" + handler, "once-" + handler, ["/bin/sh", "-c", "echo again; exit 0"])
            XCTAssertEqual(cri(["start", again]).code, 0)
            XCTAssertTrue(waitState(again, "EXITED"))
            notes.append("again: " + out(cri(["logs", again])))
            // Stop: SIGTERM to sleep (pid 1 of its own namespace ignores it), SIGKILL after 1 s.
            r = cri(["stop", "-t", "1", a])
            XCTAssertEqual(r.code, 0, r.stderr)
            notes.append("stopped exit code: " + out(cri(["inspect", "-o", "go-template", "--template", "{{.status.exitCode}}", a])))
            XCTAssertEqual(cri(["rm", a]).code, 0)
            XCTAssertEqual(cri(["stopp", pod]).code, 0)
            XCTAssertEqual(cri(["rmp", pod]).code, 0)
            XCTAssertEqual(out(cri(["ps", "-a", "-q"])), "", "\(handler): nothing left")
            seen[handler] = notes
        }
        XCTAssertEqual(seen["skiff"], seen["runc"])
        XCTAssertEqual(seen["skiff"]?.first, "ps: 2")
        XCTAssertTrue(seen["skiff"]?.contains("exec -s: 0 exec-out") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(seen["skiff"]?.contains("exec -i: 0 got-line") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(seen["skiff"]?.contains("exit code: 7") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(seen["skiff"]?.contains("update: 0") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(seen["skiff"]?.contains("attach: 0 attached-hi") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(seen["skiff"]?.contains("port-forward: pf-ok") == true, "\(seen["skiff"] ?? [])")
        XCTAssertTrue(Host.processes(mentioning: "sleep 3017").isEmpty, "the pods' processes are gone")
    }

    /// Kubernetes' `mountPropagation: Bidirectional` (what the CRI validation suite's propagation
    /// spec checks, and what failed with "pivot_root: invalid argument" before issue 12): a
    /// privileged container mounts a tmpfs under a bidirectional volume, and the host sees it; the
    /// same on the runc and the skiff handler.
    func testBidirectionalMountPropagationIsTheSameOnSkiffAndRunc() throws {
        for handler in ["runc", "skiff"] {
            // containerd requires the host path to be on a shared mount.
            let hostDir = work + "/bi-" + handler
            try FileManager.default.createDirectory(atPath: hostDir + "/sub", withIntermediateDirectories: true)
            XCTAssertEqual(Cmd.run("/bin/mount", ["--bind", hostDir, hostDir]).code, 0)
            XCTAssertEqual(Cmd.run("/bin/mount", ["--make-shared", hostDir]).code, 0)
            defer { Cmd.run("/bin/umount", ["-R", "-l", hostDir]) }
            let podJSON = try writeJSON(
                [
                    "metadata": ["name": "bi-" + handler, "namespace": "default", "uid": "bi-\(handler)-uid", "attempt": 1],
                    "log_directory": work + "/logs/bi-" + handler,
                    "linux": ["security_context": ["privileged": true, "namespace_options": ["pid": 1]]]
                ], "bi-\(handler)-pod.json")
            let pod = out(cri(["runp", "--runtime", handler, podJSON]))
            XCTAssertFalse(pod.isEmpty, "\(handler): runp")
            let ctrJSON = try writeJSON(
                [
                    "metadata": ["name": "bi-" + handler], "image": ["image": ref],
                    "command": ["/bin/sh", "-c", "mount -t tmpfs skiffbi-\(handler) /mnt/bi/sub && echo mounted; exec sleep 3019"],
                    "log_path": "bi-\(handler).log", "mounts": [["container_path": "/mnt/bi", "host_path": hostDir, "propagation": 2]],
                    "linux": ["security_context": ["privileged": true]]
                ], "bi-\(handler)-ctr.json")
            let c = out(cri(["create", pod, ctrJSON, podJSON]))
            XCTAssertFalse(c.isEmpty, "\(handler): create")
            XCTAssertEqual(cri(["start", c]).code, 0, "\(handler): start")
            var seen = false
            for _ in 0..<100 where !seen {
                seen = ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").contains(" skiffbi-\(handler) ")
                if !seen { usleep(50_000) }
            }
            XCTAssertTrue(seen, "\(handler): the container's mount under the Bidirectional volume reached the host; logs: \(out(cri(["logs", c])))")
            cri(["stop", "-t", "0", c])
            cri(["rm", c])
            cri(["stopp", pod])
            cri(["rmp", pod])
        }
    }

    /// Issue 18 through the node path: a pod sharing one pid namespace, a container whose init
    /// leaves a background child; `crictl stop -t 2` on both handlers. skiff must be within 2x of
    /// runc's stop time and leave nothing alive.
    func testStopInASharedPidPod() throws {
        var times: [String: Double] = [:]
        for handler in ["runc", "skiff"] {
            let pod = out(cri(["runp", "--runtime", handler, try podConfig("s-" + handler, pid: 0)]))
            XCTAssertFalse(pod.isEmpty)
            let marker = "sleep 14\(handler == "skiff" ? 1 : 2)"
            let c = try create(in: pod, podName: "s-" + handler, "bg-" + handler, ["/bin/sh", "-c", "\(marker)1 & \(marker)2"])
            XCTAssertEqual(cri(["start", c]).code, 0)
            XCTAssertTrue(waitState(c, "RUNNING"))
            for _ in 0..<100 where Host.processes(mentioning: marker + "1").isEmpty { usleep(20_000) }
            let t0 = Date()
            let r = cri(["stop", "-t", "2", c])
            times[handler] = Date().timeIntervalSince(t0)
            XCTAssertEqual(r.code, 0, r.stderr)
            for _ in 0..<50 where !Host.processes(mentioning: marker).isEmpty { usleep(20_000) }
            XCTAssertEqual(Host.processes(mentioning: marker), [], "\(handler): the background child went with the container")
            XCTAssertEqual(cri(["rm", c]).code, 0)
            XCTAssertEqual(cri(["stopp", pod]).code, 0)
            XCTAssertEqual(cri(["rmp", pod]).code, 0)
        }
        print(
            "crictl stop -t 2 in a shared-pid pod: " + times.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value * 1000)) ms" }.joined(separator: ", "))
        XCTAssertLessThan(times["skiff"]!, max(2 * times["runc"]!, 0.3), "within 2x of runc")
    }
}

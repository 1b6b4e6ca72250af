import Foundation
import XCTest

/// skiffctl against a real registry (Debian's docker-registry) on 127.0.0.1, started by the test
/// with storage in the test's directory; images are put there with skopeo.
final class RegistryTests: ImageTestCase {
    var registry: Background?
    var port = 0
    var host: String { "127.0.0.1:\(port)" }

    /// A docker-registry serving the test's storage on 127.0.0.1:`port` (config `<name>.yml`),
    /// optionally with deletes, an `auth:` and an `http.tls:` section; returns once it answers (or gave up).
    func serveRegistry(
        _ binary: String, _ name: String, port: Int, deletable: Bool = false, auth: String? = nil,
        tls: String? = nil, log: String? = nil
    ) throws -> Background {
        func indent(_ yaml: String, _ by: String) -> String {
            yaml.split(separator: "\n").map { by + $0 }.joined(separator: "\n") + "\n"
        }
        var config = """
            version: 0.1
            storage:
              filesystem:
                rootdirectory: \(work!)/registry

            """
        if deletable { config += "  delete:\n    enabled: true\n" }
        if let auth { config += "auth:\n" + indent(auth, "  ") }
        config += "http:\n  addr: 127.0.0.1:\(port)\n"
        if let tls { config += "  tls:\n" + indent(tls, "    ") }
        try config.write(toFile: work + "/\(name).yml", atomically: true, encoding: .utf8)
        let daemon = Background([binary, "serve", work + "/\(name).yml"], log: log)
        daemon.waitForHTTP("\(tls == nil ? "http" : "https")://127.0.0.1:\(port)/v2/")
        return daemon
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard let reg = Env.which("docker-registry"), Env.which("skopeo") != nil else {
            throw XCTSkip("docker-registry or skopeo is not installed (apt-get install docker-registry skopeo)")
        }
        // Ports below the ephemeral range (32768+), so no client connection holds ours; a port
        // that is taken anyway gets another try.
        for _ in 0..<4 {
            port = Int.random(in: 20000...30000) / 4 * 4
            let daemon = try serveRegistry(reg, "registry", port: port, deletable: true, log: work + "/registry.log")
            if Cmd.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://\(host)/v2/"]).code == 0 {
                registry = daemon
                break
            }
            daemon.stop()
        }
        XCTAssertNotNil(registry, "docker-registry did not start")
        for (tag, format) in [("oci", "oci"), ("v2s2", "v2s2")] {
            let r = Cmd.run(
                "/usr/bin/skopeo",
                [
                    "copy", "--format", format, "--dest-tls-verify=false", "oci-archive:" + image,
                    "docker://\(host)/skiff/busybox:\(tag)"
                ], timeout: 60)
            XCTAssertEqual(r.code, 0, r.stderr)
        }
    }

    override func tearDown() {
        registry?.stop()
        super.tearDown()
    }

    func ctl(_ args: [String], ns: String = "default") -> CmdResult {
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_HOSTS_DIR"] = work + "/certs.d"
        env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        return Cmd.run(Env.skiffctl, ["--root", work + "/root", "--state", work + "/state", "-n", ns] + args, timeout: 120, env: env)
    }

    func testPullRunPushAndAMultiPlatformIndex() throws {
        for tag in ["oci", "v2s2"] {
            let r = ctl(["images", "pull", "\(host)/skiff/busybox:\(tag)"])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("\(host)/skiff/busybox:\(tag): sha256:"), r.stdout)
        }
        XCTAssertEqual(ctl(["leases", "ls"]).stdout.split(separator: "\n").count, 1, "a pull's lease ends with it")
        let ls = ctl(["images", "ls"]).stdout
        XCTAssertTrue(ls.contains("application/vnd.docker.distribution.manifest.v2+json"), ls)
        XCTAssertTrue(ls.contains("application/vnd.oci.image.manifest.v1+json"), ls)
        var r = ctl(["run", "--rm", "\(host)/skiff/busybox:v2s2", "p1", "/bin/skiff-payload", "echo", "from-registry"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("from-registry"))

        // Push under a new name, pull that into another namespace: same digest.
        XCTAssertEqual(ctl(["images", "push", "\(host)/skiff/busybox:oci", "\(host)/skiff/copy:1"]).code, 0)
        r = ctl(["images", "pull", "\(host)/skiff/copy:1"], ns: "other")
        XCTAssertEqual(r.code, 0, r.stderr)
        let digest = { (s: String) in s.split(separator: " ").last.map(String.init) ?? "" }
        XCTAssertEqual(digest(r.stdout), digest(ctl(["images", "pull", "\(host)/skiff/busybox:oci"]).stdout))

        // A multi-layer image with deletions, pushed with skopeo, pulled and run.
        let layered = work + "/layers.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", SkiffctlTests.layeredImage, image, layered]).code, 0)
        XCTAssertEqual(
            Cmd.run(
                "/usr/bin/skopeo",
                [
                    "copy", "--dest-tls-verify=false", "oci-archive:" + layered,
                    "docker://\(host)/skiff/layers:1"
                ], timeout: 60
            ).code, 0)
        XCTAssertEqual(ctl(["images", "pull", "\(host)/skiff/layers:1"]).code, 0)
        r = ctl(["run", "--rm", "\(host)/skiff/layers:1", "l1", "/bin/sh", "-c", "echo a: $(ls /a); echo d: $(ls /d)"])
        XCTAssertTrue(r.stdout.contains("a: keep\n") && r.stdout.contains("d: new\n"), r.stdout + r.stderr)

        // A multi-platform index: only linux/amd64 is fetched and unpacked by default.
        try pushIndex()
        r = ctl(["images", "pull", "\(host)/skiff/multi:1"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(ctl(["images", "ls"]).stdout.contains("\(host)/skiff/multi:1\tapplication/vnd.oci.image.index.v1+json"))
        r = ctl(["run", "--rm", "\(host)/skiff/multi:1", "m1", "/bin/skiff-payload", "echo", "multi-ok"])
        XCTAssertTrue(r.stdout.contains("multi-ok"), r.stderr)
        r = ctl(["images", "pull", "--platform", "linux/s390x", "\(host)/skiff/multi:1"], ns: "s390")
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("no manifest for platform linux/s390x"), r.stderr)
        XCTAssertEqual(ctl(["images", "pull", "--all-platforms", "\(host)/skiff/multi:1"], ns: "all").code, 0)
    }

    /// hosts.toml: a name served by another server, and a mirror tried before a server that is down.
    /// `images push` read each blob whole into memory before sending it. Blobs now go from their
    /// files as curl sends them: pushing a 160 MB layer stays far below that in peak RSS, and the
    /// registry holds the same bytes.
    func testPushStreamsLargeLayers() throws {
        let archive = work + "/big.tar"
        let made = Cmd.run("/usr/bin/python3", ["-c", ManagerFaultTests.bigImageScript, archive, "oci"], timeout: 120)
        XCTAssertEqual(made.code, 0, made.stderr)
        XCTAssertEqual(ctl(["images", "import", archive]).code, 0)
        try? FileManager.default.removeItem(atPath: archive)
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_HOSTS_DIR"] = work + "/certs.d"
        let r = Cmd.run(
            "/usr/bin/time",
            ["-f", "maxrss=%M", Env.skiffctl, "--root", work + "/root", "--state", work + "/state", "images", "push"]
                + ["docker.io/skiff/big:oci", "\(host)/skiff/big:1"],
            timeout: 120, env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
        let kb = Int(r.stderr.firstMatch(of: #/maxrss=([0-9]+)/#)?.1 ?? "") ?? Int.max
        XCTAssertLessThan(kb, 80 << 10, "push: peak RSS \(kb) KiB for a 160 MB layer")
        let layer = try XCTUnwrap(
            ctl(["content", "ls"]).stdout.split(separator: "\n").first { ($0.split(separator: "\t").last.flatMap { Int($0) } ?? 0) > 160 << 20 })
        let digest = String(layer.split(separator: "\t")[0])
        let served = Cmd.run("/bin/sh", ["-c", "/usr/bin/curl -sf \"$0\" | sha256sum", "http://\(host)/v2/skiff/big/blobs/\(digest)"], timeout: 120)
        XCTAssertEqual(served.stdout.split(separator: " ").first.map { "sha256:" + $0 }, digest, "the registry holds the layer: " + served.stderr)
        let pulled = ctl(["images", "pull", "\(host)/skiff/big:1"], ns: "other")
        XCTAssertEqual(pulled.code, 0, pulled.stderr)

        // A resumed download into another store: the rest (a 206) is appended from its file, not
        // read whole into memory first.
        let hex = String(digest.dropFirst(7))
        try FileManager.default.createDirectory(atPath: work + "/root2/content/ingest", withIntermediateDirectories: true)
        let blob = try XCTUnwrap(FileHandle(forReadingAtPath: work + "/root/content/blobs/sha256/" + hex))
        try blob.readData(ofLength: 8 << 20).write(to: URL(fileURLWithPath: work + "/root2/content/ingest/pull-" + hex))
        try blob.close()
        let resumed = Cmd.run(
            "/usr/bin/time",
            ["-f", "maxrss=%M", Env.skiffctl, "--root", work + "/root2", "--state", work + "/state2", "images", "pull", "\(host)/skiff/big:1"],
            timeout: 120, env: env)
        XCTAssertEqual(resumed.code, 0, resumed.stderr)
        let log = (try? String(contentsOfFile: work + "/registry.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("\(digest) HTTP/1.1\" 206 "), "a 206 for the rest: \(log.suffix(800))")
        let resumedKB = Int(resumed.stderr.firstMatch(of: #/maxrss=([0-9]+)/#)?.1 ?? "") ?? Int.max
        XCTAssertLessThan(resumedKB, 80 << 10, "resumed pull: peak RSS \(resumedKB) KiB for a 160 MB layer")
    }

    func testHostsTomlServerAndMirror() throws {
        let certs = work + "/certs.d"
        try FileManager.default.createDirectory(atPath: certs + "/registry.invalid", withIntermediateDirectories: true)
        try "server = \"http://\(host)\"\n".write(toFile: certs + "/registry.invalid/hosts.toml", atomically: true, encoding: .utf8)
        var r = ctl(["images", "pull", "registry.invalid/skiff/busybox:oci"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("registry.invalid/skiff/busybox:oci: sha256:"), r.stdout)
        try FileManager.default.createDirectory(atPath: certs + "/mirrored.invalid", withIntermediateDirectories: true)
        try """
        # the server is down; the mirror answers
        server = "http://127.0.0.1:1"

        [host."http://\(host)"]
          capabilities = ["pull", "resolve"]
          [host."http://\(host)".header]
            x-skiff-test = "1"
        """.write(toFile: certs + "/mirrored.invalid/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "mirrored.invalid/skiff/busybox:v2s2"])
        XCTAssertEqual(r.code, 0, r.stderr)
        // Pushing needs an endpoint with the push capability: only the (down) server has it.
        r = ctl(["images", "push", "mirrored.invalid/skiff/busybox:v2s2"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("127.0.0.1:1"), r.stderr)
        // _default: any host without its own directory.
        try FileManager.default.createDirectory(atPath: certs + "/_default", withIntermediateDirectories: true)
        try "server = \"http://\(host)\"\n".write(toFile: certs + "/_default/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "anything.invalid/skiff/busybox:oci"], ns: "dflt")
        XCTAssertEqual(r.code, 0, r.stderr)
        try "server = \"http://\(host)\"\n[host.broken\n".write(toFile: certs + "/registry.invalid/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "registry.invalid/skiff/busybox:oci"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("hosts.toml") && r.stderr.contains("line 2"), r.stderr)
    }

    /// A registry behind basic auth (htpasswd): refused without credentials, served with -u or
    /// with ~/.docker/config.json.
    func testBasicAuthWithFlagAndDockerConfig() throws {
        let hash = Cmd.run("/usr/bin/python3", ["-W", "ignore", "-c", "import crypt; print(crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))"])
        guard hash.code == 0, hash.stdout.hasPrefix("$2") else { throw XCTSkip("no bcrypt in python's crypt here") }
        try "skiff:\(hash.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(toFile: work + "/htpasswd", atomically: true, encoding: .utf8)
        let authPort = port + 1
        let daemon = try serveRegistry(
            Env.which("docker-registry")!, "auth", port: authPort,
            auth: """
                htpasswd:
                  realm: skiff-test
                  path: \(work!)/htpasswd
                """)
        defer { daemon.stop() }
        let ref = "127.0.0.1:\(authPort)/skiff/busybox:oci"
        var r = ctl(["images", "pull", ref])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("authentication required"), r.stderr)
        r = ctl(["images", "pull", "-u", "skiff:wrong", ref])
        XCTAssertNotEqual(r.code, 0)
        r = ctl(["images", "pull", "-u", "skiff:s3cret", ref], ns: "withflag")
        XCTAssertEqual(r.code, 0, r.stderr)
        // The same credentials from a docker config (HOME points at the test's directory).
        let home = work + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.docker", withIntermediateDirectories: true)
        let auth = Data("skiff:s3cret".utf8).base64EncodedString()
        try "{\"auths\":{\"127.0.0.1:\(authPort)\":{\"auth\":\"\(auth)\"}}}".write(toFile: home + "/.docker/config.json", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = home
        env["SKIFF_HOSTS_DIR"] = work + "/certs.d"
        r = Cmd.run(Env.skiffctl, ["--root", work + "/root", "--state", work + "/state", "-n", "withconfig", "images", "pull", ref], env: env)
        XCTAssertEqual(r.code, 0, r.stderr)
    }

    /// Bearer tokens: a small proxy in front of the registry that answers 401 with a token realm,
    /// hands out a token, and serves only requests that carry it (the Docker Hub flow).
    func testBearerTokenFlow() throws {
        let proxyPort = port + 2
        let py = """
            import http.server, json, sys, urllib.request, urllib.error
            upstream, port = sys.argv[1], int(sys.argv[2])
            TOKEN = "tok-123"
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self): self.any()
                def do_HEAD(self): self.any()
                def any(self):
                    if self.headers.get("X-Skiff-Test") != "yes":
                        self.send_response(403); self.send_header("Content-Length", "0"); self.end_headers(); return
                    if self.path.startswith("/token"):
                        ok = "service=fake" in self.path and "scope=repository" in self.path
                        body = json.dumps({"token": TOKEN if ok else "bad"}).encode()
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
                    if self.headers.get("Authorization") != "Bearer " + TOKEN:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:%d/token",service="fake",scope="repository:skiff/busybox:pull"' % port)
                        self.send_header("Content-Length", "0"); self.end_headers(); return
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
                    try:
                        with urllib.request.urlopen(urllib.request.Request(upstream + self.path, method=self.command, headers=hdrs)) as r:
                            data = r.read() if self.command != "HEAD" else b""
                            self.send_response(r.status)
                            for k, v in r.headers.items():
                                if k.lower() in ("content-type", "docker-content-digest", "content-length", "content-range"): self.send_header(k, v)
                            self.end_headers(); self.wfile.write(data)
                    except urllib.error.HTTPError as e:
                        self.send_response(e.code); self.send_header("Content-Length", "0"); self.end_headers()
                def log_message(self, *a): pass
            http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
            """
        let proxy = Background(["/usr/bin/python3", "-c", py, "http://\(host)", String(proxyPort)])
        defer { proxy.stop() }
        proxy.waitForHTTP("http://127.0.0.1:\(proxyPort)/v2/")
        // The proxy also wants a header, which hosts.toml adds to every request (token included).
        var r = ctl(["images", "pull", "127.0.0.1:\(proxyPort)/skiff/busybox:oci"])
        XCTAssertNotEqual(r.code, 0, "no header, no image")
        let dir = work + "/certs.d/127.0.0.1:\(proxyPort)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        server = "http://127.0.0.1:\(proxyPort)"
        [host."http://127.0.0.1:\(proxyPort)"]
          [host."http://127.0.0.1:\(proxyPort)".header]
            X-Skiff-Test = "yes"
        """.write(toFile: dir + "/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "127.0.0.1:\(proxyPort)/skiff/busybox:oci"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(ctl(["run", "--rm", "127.0.0.1:\(proxyPort)/skiff/busybox:oci", "tk1", "/bin/true"]).code == 0)
    }

    /// HTTPS: a registry with a self-signed certificate is refused, then trusted through
    /// hosts.toml's `ca`, or with --skip-verify.
    func testTLSWithCAAndSkipVerify() throws {
        guard let openssl = Env.which("openssl") else { throw XCTSkip("openssl is not installed") }
        var r = Cmd.run(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/key.pem", "-out", work + "/cert.pem",
                "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"
            ])
        XCTAssertEqual(r.code, 0, r.stderr)
        let tlsPort = port + 3
        let daemon = try serveRegistry(
            Env.which("docker-registry")!, "tls", port: tlsPort,
            tls: """
                certificate: \(work!)/cert.pem
                key: \(work!)/key.pem
                """)
        defer { daemon.stop() }
        // The name "tls.invalid" is served by the https registry (hosts.toml); first without trust.
        let certs = work + "/certs.d/tls.invalid"
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try "server = \"https://127.0.0.1:\(tlsPort)\"\n".write(toFile: certs + "/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "tls.invalid/skiff/busybox:oci"], ns: "tls1")
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.lowercased().contains("certificate") || r.stderr.contains("SSL"), r.stderr)
        XCTAssertEqual(ctl(["images", "pull", "--skip-verify", "tls.invalid/skiff/busybox:oci"], ns: "tls2").code, 0)
        try "server = \"https://127.0.0.1:\(tlsPort)\"\nca = \"\(work!)/cert.pem\"\n".write(toFile: certs + "/hosts.toml", atomically: true, encoding: .utf8)
        r = ctl(["images", "pull", "tls.invalid/skiff/busybox:oci"], ns: "tls3")
        XCTAssertEqual(r.code, 0, r.stderr)
    }

    /// A download cut off earlier resumes with a Range request from where it stopped.
    func testInterruptedLayerDownloadResumes() throws {
        let blobs = work + "/registry/docker/registry/v2/blobs/sha256"
        var biggest = ("", 0)
        for p in FileManager.default.enumerator(atPath: blobs)!.compactMap({ $0 as? String }) where p.hasSuffix("/data") {
            let size = (try? FileManager.default.attributesOfItem(atPath: blobs + "/" + p)[.size] as? Int) ?? 0
            if size > biggest.1 { biggest = (p, size) }
        }
        let hex = String(biggest.0.split(separator: "/")[1])
        let data = try Data(contentsOf: URL(fileURLWithPath: blobs + "/" + biggest.0))
        XCTAssertEqual(ctl(["ns", "ls"]).code, 0)  // creates the store
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: work + "/root/content/ingest/pull-" + hex))
        let r = ctl(["images", "pull", "\(host)/skiff/busybox:oci"])
        XCTAssertEqual(r.code, 0, r.stderr)
        let log = (try? String(contentsOfFile: work + "/registry.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("sha256:\(hex) HTTP/1.1\" 206 \(data.count - data.count / 3)"), "a 206 for the rest: \(log.suffix(800))")
        XCTAssertTrue(ctl(["run", "--rm", "\(host)/skiff/busybox:oci", "r1", "/bin/true"]).code == 0)
    }

    func testBadRegistryDataIsRefusedAndNothingIsStored() throws {
        var r = ctl(["images", "pull", "\(host)/skiff/nothere:1"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("not found in the registry"), r.stderr)
        r = ctl(["images", "pull", "127.0.0.1:1/skiff/busybox:oci"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("registry 127.0.0.1:1"), r.stderr)
        r = ctl(["images", "pull", "Bad Ref"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("invalid reference format"), r.stderr)

        // Corrupt the layer in the registry's storage: the digest check refuses it.
        let blobs = work + "/registry/docker/registry/v2/blobs/sha256"
        var biggest = ("", 0)
        for p in FileManager.default.enumerator(atPath: blobs)!.compactMap({ $0 as? String }) where p.hasSuffix("/data") {
            let size = (try? FileManager.default.attributesOfItem(atPath: blobs + "/" + p)[.size] as? Int) ?? 0
            if size > biggest.1 { biggest = (blobs + "/" + p, size) }
        }
        var data = try Data(contentsOf: URL(fileURLWithPath: biggest.0))
        data[data.count / 2] ^= 0xff
        try data.write(to: URL(fileURLWithPath: biggest.0))
        r = ctl(["images", "pull", "\(host)/skiff/busybox:oci"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("digest mismatch"), r.stderr)
        // Truncated: the size check refuses it.
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: biggest.0))
        r = ctl(["images", "pull", "\(host)/skiff/busybox:v2s2"])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertEqual(ctl(["images", "ls", "-q"]).stdout, "", "no partial image")
        XCTAssertEqual(ctl(["snapshots", "ls"]).stdout.split(separator: "\n").count, 1, "no snapshot")
        let ingest = (try? FileManager.default.contentsOfDirectory(atPath: work + "/root/content/ingest")) ?? []
        XCTAssertEqual(ingest, [], "no leftovers in ingest")
    }

    /// Pushes an OCI index with a linux/amd64 and a linux/arm64 manifest (the same layer).
    func pushIndex() throws {
        let py = """
            import json, sys, tarfile, hashlib, io
            src, dst = sys.argv[1], sys.argv[2]
            t = tarfile.open(src)
            blobs = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
            index = json.loads(blobs["index.json"])
            man_d = index["manifests"][0]["digest"]
            man = json.loads(blobs["blobs/sha256/" + man_d[7:]])
            cfg = json.loads(blobs["blobs/sha256/" + man["config"]["digest"][7:]])
            cfg["architecture"] = "arm64"
            cfg_b = json.dumps(cfg).encode(); cfg_d = "sha256:" + hashlib.sha256(cfg_b).hexdigest()
            man2 = dict(man); man2["config"] = {"mediaType": man["config"]["mediaType"], "digest": cfg_d, "size": len(cfg_b)}
            man2_b = json.dumps(man2).encode(); man2_d = "sha256:" + hashlib.sha256(man2_b).hexdigest()
            idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_d, "size": index["manifests"][0]["size"],
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man2_d, "size": len(man2_b),
                 "platform": {"architecture": "arm64", "os": "linux"}}]}
            idx_b = json.dumps(idx).encode(); idx_d = "sha256:" + hashlib.sha256(idx_b).hexdigest()
            out = tarfile.open(dst, "w")
            def add(n, b):
                i = tarfile.TarInfo(n); i.size = len(b); out.addfile(i, io.BytesIO(b))
            add("oci-layout", blobs["oci-layout"])
            add("index.json", json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": idx["mediaType"], "digest": idx_d, "size": len(idx_b)}]}).encode())
            for n, b in blobs.items():
                if n.startswith("blobs/"): add(n, b)
            for b in (cfg_b, man2_b, idx_b): add("blobs/sha256/" + hashlib.sha256(b).hexdigest(), b)
            out.close()
            """
        let multi = work + "/multi.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", ["-c", py, image, multi]).code, 0)
        let r = Cmd.run("/usr/bin/skopeo", ["copy", "--all", "--dest-tls-verify=false", "oci-archive:" + multi, "docker://\(host)/skiff/multi:1"], timeout: 60)
        XCTAssertEqual(r.code, 0, r.stderr)
    }
}

/// Faults around the manager: killed mid-pull and mid-run, a full disk during a pull.
extension RegistryTests {
    /// Pushes busybox plus a 32 MiB random layer as skiff/big:1 and returns its reference.
    func pushBigImage() throws -> String {
        let root = work + "/bigroot"
        XCTAssertEqual(Cmd.run("/bin/cp", ["-a", Env.rootfs, root]).code, 0)
        XCTAssertEqual(Cmd.run("/bin/dd", ["if=/dev/urandom", "of=\(root)/big.bin", "bs=1M", "count=32"]).code, 0)
        let tar = work + "/big.tar"
        XCTAssertEqual(Cmd.run("/usr/bin/python3", [Env.packageRoot + "/fixtures/build-image.py", root, tar, "docker.io/skiff/big:1"]).code, 0)
        XCTAssertEqual(
            Cmd.run(
                "/usr/bin/skopeo", ["copy", "--dest-tls-verify=false", "oci-archive:" + tar, "docker://\(host)/skiff/big:1"],
                timeout: 120
            ).code, 0)
        return "\(host)/skiff/big:1"
    }

    func testKilledMidPullAndMidRunAndFullDisk() throws {
        let big = try pushBigImage()
        // kill -9 during a pull: no image appears; the next pull completes (resuming what it can).
        var env = ProcessInfo.processInfo.environment
        env["SKIFF_HOSTS_DIR"] = work + "/certs.d"
        env["PATH"] = (Env.shim as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let ctlBase = [Env.skiffctl, "--root", work + "/root", "--state", work + "/state"]
        let pull = Background(ctlBase + ["images", "pull", big], env: env)
        usleep(60_000)
        pull.stop(SIGKILL)
        XCTAssertEqual(ctl(["images", "ls", "-q"]).stdout, "", "no image from a killed pull")
        var r = ctl(["images", "pull", big])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(ctl(["images", "check"]).stdout.contains("complete"), true)
        XCTAssertEqual(ctl(["leases", "ls"]).stdout.split(separator: "\n").count <= 2, true, "at most the killed pull's lease, which expires")

        // kill -9 of an attached run: the container lives on in its shim, and is found again.
        let run = Background(ctlBase + ["run", big, "r1", "/bin/sleep", "3023"], env: env)
        for _ in 0..<100 where !ctl(["tasks", "ls"]).stdout.contains("RUNNING") { usleep(50_000) }
        run.stop(SIGKILL)
        XCTAssertTrue(ctl(["tasks", "ls"]).stdout.contains("r1\t"), "the task survives its manager")
        let doctor = ctl(["doctor"]).stdout
        XCTAssertTrue(doctor.contains("no problems found"), doctor)
        XCTAssertEqual(ctl(["tasks", "rm", "-f", "r1"]).code, 0)
        XCTAssertEqual(ctl(["containers", "rm", "r1"]).code, 0)
        XCTAssertTrue(Host.processes(mentioning: "sleep 3023").isEmpty)

        // A full disk during the pull: a clear error, no image, no partial blob.
        let small = work + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        XCTAssertEqual(Cmd.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", small]).code, 0)
        defer { Cmd.run("/bin/umount", ["-l", small]) }
        r = Cmd.run(Env.skiffctl, ["--root", small + "/root", "--state", work + "/state2", "images", "pull", big], env: env)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("No space left on device") || r.stderr.contains("space"), r.stderr)
        XCTAssertEqual(Cmd.run(Env.skiffctl, ["--root", small + "/root", "--state", work + "/state2", "images", "ls", "-q"]).stdout, "")
        let ingest = (try? FileManager.default.contentsOfDirectory(atPath: small + "/root/content/ingest")) ?? []
        XCTAssertTrue(ingest.allSatisfy { $0.hasPrefix("pull-") && !$0.hasSuffix(".part") }, "at most a resumable partial: \(ingest)")
        // ... which prune removes, so the store is usable again.
        r = Cmd.run(Env.skiffctl, ["--root", small + "/root", "--state", work + "/state2", "content", "prune"])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: small + "/root/content/ingest")) ?? [], [])
    }
}

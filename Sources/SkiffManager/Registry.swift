import Foundation
import SkiffJSON
import SkiffSys

/// Options for talking to a registry.
public struct RegistryOptions {
    public var plainHTTP = false
    public var skipVerify = false
    public var credentials: (user: String, password: String)?
    public var platform = "linux/amd64"
    public var allPlatforms = false
    public var progress = false
    /// Unpack the layers of the pulled manifest (one platform) while they download.
    public var unpack = false
    /// containerd-style hosts.toml tree (`<dir>/<host>/hosts.toml`).
    public var hostsDir = "/etc/skiff/certs.d"
    public init() {}
}

/// A Docker Registry HTTP API v2 client: bearer-token and basic auth, manifests and indexes,
/// blobs streamed to the content store's ingest area and verified before they are committed;
/// an interrupted blob download resumes with a Range request.
public final class RegistryClient {
    let host: String
    let repository: String
    let options: RegistryOptions
    let endpoint: RegistryEndpoint
    var token: String?
    /// Once a registry asked for basic auth, every later request carries it (no 401 round trip).
    var basic: String?
    let http = HTTPClient()
    /// Told each blob before it is fetched (the pull's lease takes it).
    var onBlob: ((String) -> Void)?

    public init(host: String, repository: String, options: RegistryOptions, endpoint: RegistryEndpoint) {
        self.host = host
        self.repository = repository
        var o = options
        // The credentials of the host this endpoint is (a mirror's own, not the upstream's: a
        // mirror that asks for them must not get the upstream registry's password).
        if o.credentials == nil, let c = DockerCredentials.lookup(host: RegistryClient.hostPort(endpoint.base) ?? host) { o.credentials = c }
        self.options = o
        self.endpoint = endpoint
        http.skipVerify = self.endpoint.skipVerify
        http.caFile = self.endpoint.ca
    }

    /// "host[:port]" of an endpoint's base URL.
    static func hostPort(_ base: String) -> String? {
        guard let u = URLComponents(string: base), let h = u.host else { return nil }
        return u.port.map { "\(h):\($0)" } ?? h
    }

    /// The same endpoint and credentials for another thread (the token is copied, not shared).
    func clone(progress: Bool) -> RegistryClient {
        var o = options
        o.progress = progress
        let c = RegistryClient(host: host, repository: repository, options: o, endpoint: endpoint)
        c.token = token
        c.basic = basic
        return c
    }

    /// Fetches `blobs` three at a time, as containerd does: one layer's round trips and hashing
    /// overlap another's transfer. The pull's lease takes every blob first, here (the metadata
    /// database stays on this thread). The first failure stops the others from starting new
    /// blobs; what they have downloaded is kept for a resume.
    /// `feeds` (by digest) also get a blob's bytes as they arrive (StreamingUnpack).
    func fetchBlobs(_ blobs: [(Descriptor, String)], into content: ContentStore, feeds: [String: LayerFeed] = [:]) throws {
        var seen = Set<String>()
        let unique = blobs.filter { seen.insert($0.0.digest).inserted }
        if unique.count <= 1 {
            for (d, label) in unique { try fetchBlob(d, into: content, label: label, feed: feeds[d.digest]) }
            return
        }
        for (d, _) in unique { onBlob?(d.digest) }
        let job = FetchJob(blobs: unique, content: content, client: self, feeds: feeds)
        DispatchQueue.concurrentPerform(iterations: min(3, unique.count)) { _ in job.work() }
        if let failure = job.failure { throw failure }
    }

    /// The shared queue of fetchBlobs' workers; everything mutable is behind the lock.
    final class FetchJob: @unchecked Sendable {
        let blobs: [(Descriptor, String)]
        let content: ContentStore
        let client: RegistryClient
        let feeds: [String: LayerFeed]
        let lock = NSLock()
        var next = 0
        var failure: Error?

        init(blobs: [(Descriptor, String)], content: ContentStore, client: RegistryClient, feeds: [String: LayerFeed]) {
            self.blobs = blobs; self.content = content; self.client = client; self.feeds = feeds
        }

        func work() {
            // Bars redrawn on one line would overwrite each other: a line per finished blob.
            let worker = client.clone(progress: false)
            while true {
                lock.lock()
                if failure != nil || next >= blobs.count { lock.unlock(); return }
                let (d, label) = blobs[next]
                next += 1
                lock.unlock()
                let started = Date()
                do {
                    try worker.fetchBlob(d, into: content, label: label, feed: feeds[d.digest])
                    if client.options.progress {
                        let rate = Double(d.size) / max(Date().timeIntervalSince(started), 0.001) / 1e6
                        lock.lock()
                        FileHandle.standardError.write(Data(String(format: "%@ %@ done, %.1f MB/s\n", label, String(d.digest.prefix(15)), rate).utf8))
                        lock.unlock()
                    }
                } catch {
                    lock.lock()
                    if failure == nil { failure = error }
                    lock.unlock()
                    return
                }
            }
        }
    }

    /// The clients to try, in order, for one reference: mirrors from hosts.toml with the
    /// capability, then the server.
    static func clients(for name: String, capability: String, options: RegistryOptions) throws -> [RegistryClient] {
        // hosts.toml is looked up by the name in the reference (docker.io); the API host can differ.
        let (host, repo, _) = split(name)
        let eps = try RegistryHosts.endpoints(
            host: String(name.prefix { $0 != "/" }), server: host, dir: options.hostsDir,
            plainHTTP: options.plainHTTP, skipVerify: options.skipVerify)
        return eps.filter { $0.capabilities.contains(capability) }.map { RegistryClient(host: host, repository: repo, options: options, endpoint: $0) }
    }

    /// `docker.io/library/busybox:latest` → (registry-1.docker.io, library/busybox, latest).
    public static func split(_ normalized: String) -> (host: String, repository: String, reference: String) {
        var rest = normalized
        var reference = "latest"
        if let at = rest.firstIndex(of: "@") {
            reference = String(rest[rest.index(after: at)...]); rest = String(rest[..<at])
        } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            reference = String(rest[rest.index(after: colon)...]); rest = String(rest[..<colon])
        }
        let slash = rest.firstIndex(of: "/")!
        var host = String(rest[..<slash])
        if host == "docker.io" { host = "registry-1.docker.io" }
        return (host, String(rest[rest.index(after: slash)...]), reference)
    }

    var scheme: String { endpoint.base.hasPrefix("http://") ? "http" : "https" }

    func url(_ path: String) -> String { "\(endpoint.base)/\(repository)/\(path)" }

    typealias Response = HTTPClient.Response
    typealias Request = HTTPClient.Request

    func send(_ req: Request) throws -> Response {
        var req = req
        for (k, v) in endpoint.headers where req.headers[k] == nil { req.headers[k] = v }
        do { return try http.perform(req) } catch let e as ManagerError where e.op.hasPrefix("http") {
            throw ManagerError(
                "registry \(host)", req.url, e.cause,
                hint: e.hint ?? (scheme == "https" ? "for a plain-HTTP registry pass --plain-http" : "is the registry running?"))
        }
    }

    /// Sends with auth: on 401 it answers the challenge (Bearer token or Basic) and retries once.
    func authorized(_ make: () -> Request) throws -> Response {
        // A body streamed to a file must be the final response's only: the 401's goes.
        func fresh() -> Request {
            let r = make()
            if let fd = r.sinkFd { _ = ftruncate(fd, 0); _ = lseek(fd, 0, SEEK_SET) }
            return r
        }
        var req = make()
        if let token { req.headers["Authorization"] = "Bearer \(token)" } else if let basic { req.headers["Authorization"] = basic }
        var resp = try send(req)
        guard resp.status == 401, let challenge = resp.headers["www-authenticate"] else { return resp }
        if challenge.lowercased().hasPrefix("basic") {
            guard let c = options.credentials else {
                throw ManagerError("registry \(host)", repository, "authentication required", hint: "pass -u user:password")
            }
            req = fresh()
            basic = "Basic " + Data("\(c.user):\(c.password)".utf8).base64EncodedString()
            req.headers["Authorization"] = basic
            return try send(req)
        }
        try fetchToken(challenge)
        req = fresh()
        req.headers["Authorization"] = "Bearer \(token!)"
        resp = try send(req)
        if resp.status == 401 { throw ManagerError("registry \(host)", repository, "unauthorized", hint: "check -u user:password") }
        return resp
    }

    func fetchToken(_ challenge: String) throws {
        var params: [String: String] = [:]
        let body = challenge.drop { $0 != " " }
        for part in body.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { params[kv[0]] = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        guard let realm = params["realm"], var comps = URLComponents(string: realm) else {
            throw ManagerError("registry \(host)", repository, "unsupported auth challenge: \(challenge)")
        }
        var q: [URLQueryItem] = []
        if let s = params["service"] { q.append(URLQueryItem(name: "service", value: s)) }
        q.append(URLQueryItem(name: "scope", value: params["scope"] ?? "repository:\(repository):pull"))
        comps.queryItems = q
        var req = Request(url: comps.url!.absoluteString)
        req.maxBody = RegistryClient.maxTokenSize
        if let c = options.credentials {
            req.headers["Authorization"] = "Basic " + Data("\(c.user):\(c.password)".utf8).base64EncodedString()
        }
        let resp = try send(req)
        guard resp.status == 200, let obj = try? JSONParser.parse([UInt8](resp.body)),
            let t = (obj["token"] ?? obj["access_token"])?.stringValue
        else {
            throw ManagerError("registry \(host)", realm, "token request failed (HTTP \(resp.status))")
        }
        token = t
    }

    /// A token answer is a small JSON document (a realm of the registry's choosing could stream
    /// without end).
    static let maxTokenSize = 1 << 20

    static let accept = [MediaType.ociIndex, MediaType.dockerList, MediaType.ociManifest, MediaType.dockerManifest].joined(separator: ", ")

    /// A manifest or index by tag or digest; its digest is computed (and checked for digests).
    /// Manifests and indexes are small; a registry sending more is refused before it is all read.
    static let maxManifestSize = 4 << 20

    public func manifest(_ reference: String) throws -> (Descriptor, [UInt8]) {
        let resp = try authorized {
            var r = Request(url: url("manifests/\(reference)"), headers: ["Accept": RegistryClient.accept])
            r.maxBody = RegistryClient.maxManifestSize
            return r
        }
        if resp.status == 404 { throw ManagerError("pull", "\(host)/\(repository):\(reference)", "not found in the registry") }
        guard resp.status == 200 else { throw ManagerError("pull", "\(host)/\(repository):\(reference)", "HTTP \(resp.status)") }
        let bytes = [UInt8](resp.body)
        let digest = Digest.of(bytes)
        if reference.hasPrefix("sha256:") && digest != reference {
            throw ManagerError("pull", reference, "the registry sent a manifest with digest \(digest)")
        }
        var media = resp.headers["content-type"]?.split(separator: ";").first.map(String.init) ?? ""
        if media.isEmpty || media == "application/json", let obj = try? JSONParser.parse(bytes) {
            media = obj["mediaType"]?.stringValue ?? (obj["manifests"] != nil ? MediaType.ociIndex : MediaType.ociManifest)
        }
        return (Descriptor(mediaType: media, digest: digest, size: bytes.count), bytes)
    }

    /// Streams a blob into the content store. A partial download in ingest resumes. `feed` gets
    /// the blob's bytes in order as they arrive, a resumed partial's first.
    public func fetchBlob(_ d: Descriptor, into content: ContentStore, label: String) throws {
        try fetchBlob(d, into: content, label: label, feed: nil)
    }

    /// A feed is closed here: complete when the blob was stored and verified, else aborted.
    func fetchBlob(_ d: Descriptor, into content: ContentStore, label: String, feed: LayerFeed?) throws {
        feed?.start()
        do {
            try download(d, into: content, label: label, feed: feed)
            feed?.close(verifiedSize: d.size)
        } catch {
            feed?.close(verifiedSize: nil)
            throw error
        }
    }

    func download(_ d: Descriptor, into content: ContentStore, label: String, feed: LayerFeed?) throws {
        onBlob?(d.digest)
        if content.exists(d.digest) { return }
        let hex = try ContentStore.validateDigest(d.digest)
        let partial = content.dir + "/ingest/pull-" + hex
        // One writer per blob: a concurrent pull of the same blob waits here, then finds it done.
        let lock = try ContentStore.lockIngest(partial)
        defer { close(lock) }
        if content.exists(d.digest) { return }
        var have = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        if have > d.size { unlink(partial); have = 0 }
        // The digest follows the bytes as they arrive (the blob is not read back to hash it); a
        // resumed download first hashes what an earlier pull left.
        var hashed = Digest()
        if have > 0, let fh = FileHandle(forReadingAtPath: partial) {
            var offset = 0
            while case let chunk = fh.readData(ofLength: 1 << 20), !chunk.isEmpty {
                hashed.update(chunk)
                chunk.withUnsafeBytes { feed?.offer(at: offset, $0) }
                offset += chunk.count
            }
            try? fh.close()
        }
        let started = Date()
        let attempt = partial + ".part"
        while have < d.size {
            // Each response goes to its own file first: whether it continues the partial (206) or
            // replaces it (200) is known only at the end.
            unlink(attempt)
            let fd = open(attempt, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw ManagerError("pull blob", attempt, String(cString: strerror(errno))) }
            let from = have
            var resp: Response
            final class Status { var code = 0; var digest: Digest?; var offset = 0 }
            let status = Status()
            let continued = hashed
            do {
                resp = try authorized {
                    var r = Request(url: url("blobs/\(d.digest)"))
                    if from > 0 { r.headers["Range"] = "bytes=\(from)-" }
                    r.sinkFd = fd
                    // Never more than the descriptor promises: a registry that streams on would
                    // fill the disk (and the partial kept for a resume with it).
                    r.maxBody = d.size - from
                    // ... unless the registry ignores the Range and sends the whole blob (200).
                    r.maxWholeBody = d.size
                    // A 206 continues the partial's digest, a 200 starts over (each from a copy, as
                    // this response may yet be thrown away).
                    r.onStatus = { code in
                        status.code = code
                        status.digest = code == 206 ? continued.copy() : code == 200 ? Digest() : nil
                        status.offset = code == 206 ? from : 0
                    }
                    r.onBody = {
                        status.digest?.update($0)
                        feed?.offer(at: status.offset, $0)
                        status.offset += $0.count
                    }
                    if options.progress { r.progress = { got in RegistryClient.bar(label, d, done: from + got, started: started) } }
                    return r
                }
            } catch {
                // A broken transfer: keep what arrived, the next pull resumes after it. A 200
                // started the blob over (the registry ignored the Range): it replaces the partial.
                close(fd)
                if status.code == 200 || status.code == 206 {
                    // What arrived is kept for a resume; the next pull hashes the partial afresh.
                    try? appendFile(attempt, to: partial, truncate: status.code == 200)
                }
                unlink(attempt)
                throw error
            }
            close(fd)
            let got = (try? FileManager.default.attributesOfItem(atPath: attempt)[.size] as? Int) ?? 0
            guard resp.status == 200 || resp.status == 206 else {
                // The registry cannot give the rest: a retry would not help, so drop the partial.
                ContentStore.dropIngest(partial)
                throw ManagerError(
                    "pull blob", d.digest,
                    resp.status == 404
                        ? "not found in the registry"
                        : resp.status == 416 ? "the registry has only part of it (\(have) of \(d.size) bytes)" : "HTTP \(resp.status)")
            }
            if resp.status == 200 && got != d.size {
                // A complete answer of the wrong size: the registry's blob is not the one described.
                ContentStore.dropIngest(partial)
                throw ManagerError(
                    "pull blob", d.digest, "the registry sent \(got) bytes, the descriptor says \(d.size)",
                    hint: "the registry's copy is truncated or corrupt; nothing was stored")
            }
            try appendFile(attempt, to: partial, truncate: resp.status == 200)
            unlink(attempt)
            if let dg = status.digest { hashed = dg }
            if got == 0 { break }
            have = resp.status == 200 ? got : have + got
            if options.progress { RegistryClient.bar(label, d, done: have, started: started) }
        }
        if options.progress { FileHandle.standardError.write(Data("\n".utf8)) }
        do { try content.commit(file: partial, expected: d.digest, size: d.size, digest: hashed.finalize()) } catch {
            ContentStore.dropIngest(partial)
            throw ManagerError("pull blob", d.digest, "\(error)", hint: "the registry sent bad data; nothing was stored")
        }
        // Committed: a writer waiting on this lock finds the blob once it gets the lock, so the
        // lock file can go (left, doctor would take it for an interrupted download).
        unlink(partial + ".lock")
    }

    /// One line per blob, redrawn: `layer 1/3 sha256:4abac9f0 [#########           ] 45% 12.3 MB/s`.
    static func bar(_ label: String, _ d: Descriptor, done: Int, started: Date) {
        let frac = d.size > 0 ? min(Double(done) / Double(d.size), 1) : 1
        let width = 24, filled = Int(frac * Double(width))
        let rate = Double(done) / max(Date().timeIntervalSince(started), 0.001) / 1e6
        let line = String(
            format: "\r%@ %@ [%@%@] %3d%% %.1f MB/s", label, String(d.digest.prefix(15)),
            String(repeating: "#", count: filled), String(repeating: " ", count: width - filled), Int(frac * 100), rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func appendFile(_ src: String, to dst: String, truncate: Bool) throws {
        // A whole body replaces the partial: a rename, not a copy of a large layer.
        if truncate || access(dst, F_OK) != 0 {
            if rename(src, dst) == 0 { return }
        }
        // A continuation (206) is appended by copying from its file, never held in memory.
        let input = Glibc.open(src, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw ManagerError("pull blob", src, String(cString: strerror(errno))) }
        defer { close(input) }
        let output = Glibc.open(dst, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o600)
        if output < 0 { throw ManagerError("pull blob", dst, String(cString: strerror(errno))) }
        defer { close(output) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw ManagerError("pull blob", src, String(cString: strerror(errno))) }
        let r = copyBytes(from: input, to: output, count: Int(st.st_size))
        if let e = r.readError { throw ManagerError("pull blob: read", src, String(cString: strerror(e))) }
        if let e = r.writeError {
            throw ManagerError("pull blob: write", dst, String(cString: strerror(e)), hint: e == EINTR ? nil : "free space where skiffctl's root is")
        }
        if r.copied < Int(st.st_size) { throw ManagerError("pull blob", src, "ended early") }
    }

    public func blobExists(_ digest: String) throws -> Bool {
        try authorized { Request(url: url("blobs/\(digest)"), method: "HEAD") }.status == 200
    }

    /// A blob from the store, sent from its file as it is read (a layer is never held in memory).
    public func pushBlob(_ digest: String, from content: ContentStore) throws {
        if try blobExists(digest) { return }
        let blob = try content.openBlob(digest)
        defer { close(blob.fd) }
        let source = try content.path(digest)
        let start = try authorized { Request(url: url("blobs/uploads/"), method: "POST", body: []) }
        guard start.status == 202, let location = start.headers["location"] else {
            throw ManagerError("push blob", digest, "upload not accepted (HTTP \(start.status))")
        }
        let origin = String(endpoint.base.prefix { $0 != "/" }) + "//" + (endpoint.base.split(separator: "/").dropFirst().first.map(String.init) ?? host)
        var comps = URLComponents(string: location.hasPrefix("/") ? origin + location : location)!
        comps.queryItems = (comps.queryItems ?? []) + [URLQueryItem(name: "digest", value: digest)]
        let put = try authorized {
            Request(url: comps.url!.absoluteString, method: "PUT", headers: ["Content-Type": "application/octet-stream"], upload: (blob.fd, blob.size, source))
        }
        guard put.status == 201 else { throw ManagerError("push blob", digest, "HTTP \(put.status)") }
    }

    public func pushManifest(_ reference: String, mediaType: String, _ bytes: [UInt8]) throws {
        let resp = try authorized { Request(url: url("manifests/\(reference)"), method: "PUT", headers: ["Content-Type": mediaType], body: bytes) }
        guard resp.status == 201 else {
            throw ManagerError(
                "push manifest", "\(host)/\(repository):\(reference)", "HTTP \(resp.status): \(String(decoding: resp.body.prefix(300), as: UTF8.self))")
        }
    }
}

extension ImageStore {
    /// `images pull`: the manifest (or index and the wanted platforms' manifests), configs and
    /// layers, each verified; then the image record; then the unpack. A failure stores no image.
    public func pull(_ ref: String, options: RegistryOptions) throws -> String {
        let name = try ImageRef.normalize(ref)
        _ = content.pruneIngests(olderThan: 86400)
        // A lease for the pull's blobs: a concurrent prune must not take them before the image
        // record that references them exists.
        let leases = Leases(store)
        let lease = "pull-" + UUID().uuidString.prefix(8).lowercased()
        try leases.create(id: lease, expiresIn: 3600)
        defer { try? leases.remove(lease) }
        let clients = try RegistryClient.clients(for: name, capability: "pull", options: options)
        var lastError: Error = ManagerError("pull", name, "no endpoint with the pull capability", hint: "check hosts.toml")
        for client in clients {
            client.onBlob = { d in try? leases.add(lease, content: d) }
            do { return try pull(name, from: client, options: options) } catch {
                lastError = error
            }
        }
        throw lastError
    }

    func pull(_ name: String, from client: RegistryClient, options: RegistryOptions) throws -> String {
        let reference = RegistryClient.split(name).reference
        let (top, topBytes) = try client.manifest(reference)
        var manifests: [(Descriptor, [UInt8])] = []
        if MediaType.isIndex(top.mediaType) {
            let index = try decodeJSON(ImageIndex.self, topBytes, what: "image index", top.digest)
            let wanted = options.platform.split(separator: "/").map(String.init)
            let chosen = index.manifests.filter { m in
                options.allPlatforms
                    || (m.platform.map {
                        $0.os == wanted.first && $0.architecture == (wanted.count > 1 ? wanted[1] : "amd64")
                            && (wanted.count < 3 || $0.variant == wanted[2])
                    } ?? false)
            }
            guard !chosen.isEmpty else { throw ManagerError("pull", name, "no manifest for platform \(options.platform) in the index") }
            for m in chosen {
                if MediaType.isIndex(m.mediaType) {
                    throw ManagerError("pull", name, "its \(options.platform) entry \(m.digest) is itself an index (nested indexes are not supported)")
                }
                let (d, bytes) = try client.manifest(m.digest)
                manifests.append((Descriptor(mediaType: m.mediaType, digest: d.digest, size: bytes.count), bytes))
            }
        } else {
            manifests = [(top, topBytes)]
        }
        for (d, bytes) in manifests {
            let m = try decodeJSON(ImageManifest.self, bytes, what: "image manifest", d.digest)
            // The config is read whole into memory: its size is the registry's to state.
            guard m.config.size <= ContentStore.maxDocumentSize else {
                throw ManagerError(
                    "pull", m.config.digest, "the image config is \(m.config.size) bytes, more than the \(ContentStore.maxDocumentSize >> 20) MiB allowed")
            }
            try client.fetchBlob(m.config, into: content, label: "config")
            // The config must be an image config before anything is unpacked or recorded.
            let config = try decodeJSON(ImageConfig.self, try content.readDocument(m.config.digest), what: "image config", m.config.digest)
            let layers = m.layers.enumerated().map { ($0.element, "layer \($0.offset + 1)/\(m.layers.count)") }
            // The one manifest pulled for this host: its layers are unpacked as they arrive.
            var unpacking: StreamingUnpack?
            if options.unpack && manifests.count == 1 {
                unpacking = StreamingUnpack(snapshots: Snapshotter(store), content: content, manifest: m, config: config)
            }
            do {
                // Whether the download failed or not: each layer it verified may be committed.
                defer { unpacking?.finish() }
                try client.fetchBlobs(layers, into: content, feeds: unpacking?.feeds ?? [:])
            }
            try content.write(bytes, expected: d.digest)
        }
        try content.write(topBytes, expected: top.digest)
        try put(name, top)
        return name
    }

    /// `images push`: blobs first (skipping what the registry has), then manifests, then the tag.
    public func push(_ ref: String, to target: String?, options: RegistryOptions) throws {
        let image = try get(ref)
        let dest = try ImageRef.normalize(target ?? image.name)
        let reference = RegistryClient.split(dest).reference
        guard let client = try RegistryClient.clients(for: dest, capability: "push", options: options).first else {
            throw ManagerError("push", dest, "no endpoint with the push capability", hint: "check hosts.toml")
        }
        func pushManifest(_ d: Descriptor, as tag: String) throws {
            let bytes = try content.readDocument(d.digest)
            if MediaType.isIndex(d.mediaType) {
                let index = try decodeJSON(ImageIndex.self, bytes, what: "index", d.digest)
                for m in index.manifests where content.exists(m.digest) { try pushManifest(m, as: m.digest) }
            } else {
                let m = try decodeJSON(ImageManifest.self, bytes, what: "manifest", d.digest)
                for b in [m.config] + m.layers { try client.pushBlob(b.digest, from: content) }
            }
            try client.pushManifest(tag, mediaType: d.mediaType, bytes)
        }
        try pushManifest(image.target, as: reference)
    }
}

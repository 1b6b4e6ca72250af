import Foundation
import SkiffSys

/// HTTP through libcurl, loaded with dlopen when a command first talks to a registry.
/// Linking libcurl (or FoundationNetworking, which does) makes every skiffctl start ~12 ms
/// slower, loading ~20 shared libraries that only pull and push use; curl also gives what
/// Linux's URLSession lacks: skip_verify and a custom CA per registry.
final class HTTPClient {
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    struct Request {
        var url: String
        var method = "GET"
        var headers: [String: String] = [:]
        var body: [UInt8]?
        /// Send the body from this file instead (blob uploads): `size` bytes from its start,
        /// read as curl sends them, from the start again for each try.
        var upload: (fd: Int32, size: Int, source: String)?
        /// Stream the body to this fd instead of memory (blob downloads).
        var sinkFd: Int32?
        /// Sees the bytes of a 200 or 206 body as they go to `sinkFd` (a pull hashes them).
        var onBody: ((UnsafeRawBufferPointer) -> Void)?
        /// Told the body bytes received so far, at most every 100 ms (progress on a terminal).
        var progress: ((Int) -> Void)?
        /// A body larger than this ends the transfer with an error (in-memory bodies: manifests).
        var maxBody: Int?
        /// The limit instead of maxBody when the answer to a Range request is a 200 (the whole).
        var maxWholeBody: Int?
        /// Told each response's status as its headers arrive (also when the transfer later fails).
        var onStatus: ((Int) -> Void)?
    }

    var skipVerify = false
    var caFile: String?
    /// No byte for this many seconds ends a transfer (containerd's image_pull_progress_timeout).
    var stallTimeout = HTTPClient.defaultStallTimeout
    static let maxRedirects = 10

    /// SKIFF_PULL_PROGRESS_TIMEOUT (seconds, or Go-style "45s"/"2m"), else 30 s.
    static var defaultStallTimeout: Int {
        guard let v = ProcessInfo.processInfo.environment["SKIFF_PULL_PROGRESS_TIMEOUT"] else { return 30 }
        return parseSeconds(v) ?? 30
    }

    static func parseSeconds(_ v: String) -> Int? {
        if let n = Int(v) { return n }
        if v.hasSuffix("ms"), let n = Int(v.dropLast(2)) { return max(1, n / 1000) }
        if v.hasSuffix("s"), let n = Int(v.dropLast()) { return n }
        if v.hasSuffix("m"), let n = Int(v.dropLast()) { return n * 60 }
        if v.hasSuffix("h"), let n = Int(v.dropLast()) { return n * 3600 }
        return nil
    }

    /// Set from a SIGINT/SIGTERM handler: a transfer in progress stops at its next progress call.
    nonisolated(unsafe) static var interrupted: Int32 = 0

    // The libcurl entry points we use. curl_easy_setopt is variadic; on x86-64 and arm64 Linux a
    // pointer or long argument is passed as for a fixed-argument function.
    typealias InitFn = @convention(c) () -> OpaquePointer?
    typealias SetoptPtrFn = @convention(c) (OpaquePointer?, Int32, UnsafeRawPointer?) -> Int32
    typealias SetoptLongFn = @convention(c) (OpaquePointer?, Int32, Int) -> Int32
    typealias PerformFn = @convention(c) (OpaquePointer?) -> Int32
    typealias GetinfoFn = @convention(c) (OpaquePointer?, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias CleanupFn = @convention(c) (OpaquePointer?) -> Void
    typealias SlistAppendFn = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> OpaquePointer?
    typealias SlistFreeFn = @convention(c) (OpaquePointer?) -> Void
    typealias StrerrorFn = @convention(c) (Int32) -> UnsafePointer<CChar>?

    struct Curl {
        let initFn: InitFn, setoptPtr: SetoptPtrFn, setoptLong: SetoptLongFn, perform: PerformFn, getinfo: GetinfoFn
        let cleanup: CleanupFn, slistAppend: SlistAppendFn, slistFree: SlistFreeFn, strerror: StrerrorFn
    }

    nonisolated(unsafe) static var loaded: Curl?

    static func curl() throws -> Curl {
        if let c = loaded { return c }
        guard let h = dlopen("libcurl.so.4", RTLD_NOW) ?? dlopen("libcurl-gnutls.so.4", RTLD_NOW) else {
            throw ManagerError("load libcurl", "libcurl.so.4", String(cString: dlerror()), hint: "apt-get install libcurl4")
        }
        func sym<T>(_ name: String, _: T.Type) throws -> T {
            guard let p = dlsym(h, name) else { throw ManagerError("load libcurl", name, "symbol missing") }
            return unsafeBitCast(p, to: T.self)
        }
        let c = Curl(
            initFn: try sym("curl_easy_init", InitFn.self), setoptPtr: try sym("curl_easy_setopt", SetoptPtrFn.self),
            setoptLong: try sym("curl_easy_setopt", SetoptLongFn.self), perform: try sym("curl_easy_perform", PerformFn.self),
            getinfo: try sym("curl_easy_getinfo", GetinfoFn.self), cleanup: try sym("curl_easy_cleanup", CleanupFn.self),
            slistAppend: try sym("curl_slist_append", SlistAppendFn.self), slistFree: try sym("curl_slist_free_all", SlistFreeFn.self),
            strerror: try sym("curl_easy_strerror", StrerrorFn.self))
        loaded = c
        return c
    }

    // CURLoption values (curl.h).
    static let URL: Int32 = 10002, WRITEFUNCTION: Int32 = 20011, WRITEDATA: Int32 = 10001, HEADERFUNCTION: Int32 = 20079,
        HEADERDATA: Int32 = 10029, HTTPHEADER: Int32 = 10023, CUSTOMREQUEST: Int32 = 10036, NOBODY: Int32 = 44,
        POSTFIELDS: Int32 = 10015, POSTFIELDSIZE: Int32 = 60, SSL_VERIFYPEER: Int32 = 64, SSL_VERIFYHOST: Int32 = 81,
        CAINFO: Int32 = 10065, NOSIGNAL: Int32 = 99, CONNECTTIMEOUT: Int32 = 78, USERAGENT: Int32 = 10018,
        LOW_SPEED_LIMIT: Int32 = 19, LOW_SPEED_TIME: Int32 = 20, NOPROGRESS: Int32 = 43,
        XFERINFOFUNCTION: Int32 = 20219, XFERINFODATA: Int32 = 10057, UPLOAD: Int32 = 46, READFUNCTION: Int32 = 20012,
        READDATA: Int32 = 10009, INFILESIZE_LARGE: Int32 = 30115
    static let READFUNC_ABORT = 0x1000_0000
    static let OPERATION_TIMEDOUT: Int32 = 28, ABORTED_BY_CALLBACK: Int32 = 42
    static let RESPONSE_CODE: Int32 = 0x200002

    /// Collects what curl hands to the callbacks.
    final class Sink {
        var body = Data()
        var headers: [String: String] = [:]
        var fd: Int32 = -1
        var failed = false
        var writeErrno: Int32 = 0
        var received = 0
        var lastReport: UInt64 = 0
        var progress: ((Int) -> Void)?
        /// The status of the response being received: a redirect's body is not the blob.
        var status = 0
        var onStatus: ((Int) -> Void)?
        var onBody: ((UnsafeRawBufferPointer) -> Void)?
        var maxBody = Int.max
        var maxWholeBody: Int?
        var tooLarge = false
        var uploadFd: Int32 = -1
        var readErrno: Int32 = 0

        func count(_ n: Int) {
            received += n
            guard let progress else { return }
            let now = monotonicNanos()
            if now - lastReport > 100_000_000 { lastReport = now; progress(received) }
        }
    }

    /// One request, following redirects as registries serve blobs (Docker Hub, GHCR, ECR, GCR
    /// and S3/GCS-backed ones answer with 307 to a storage URL): http and https only, at most
    /// `maxRedirects` hops, and the Authorization header is dropped once the origin changes.
    func perform(_ request: Request) throws -> Response {
        var r = request
        // The origin is scheme, host and port (Go's client compares host and port): a redirect
        // to http:// or another port of the same host is another server for credentials.
        func origin(_ u: Foundation.URL?) -> String? {
            guard let u, let scheme = u.scheme?.lowercased(), let host = u.host?.lowercased() else { return nil }
            return "\(scheme)://\(host):\(u.port ?? (scheme == "https" ? 443 : 80))"
        }
        let originalOrigin = origin(Foundation.URL(string: request.url))
        for _ in 0...HTTPClient.maxRedirects {
            let resp = try performOnce(r)
            guard [301, 302, 303, 307, 308].contains(resp.status), let location = resp.headers["location"] else { return resp }
            guard let next = Foundation.URL(string: location, relativeTo: Foundation.URL(string: r.url))?.absoluteURL,
                let scheme = next.scheme?.lowercased(), scheme == "http" || scheme == "https"
            else {
                throw ManagerError("http \(r.method)", r.url, "redirect to \(location) refused", hint: "only http and https redirects are followed")
            }
            if origin(next) != originalOrigin { r.headers.removeValue(forKey: "Authorization") }
            if resp.status == 303 { r.method = r.method == "HEAD" ? "HEAD" : "GET"; r.body = nil; r.upload = nil }
            r.url = next.absoluteString
            if let fd = r.sinkFd { _ = ftruncate(fd, 0); _ = lseek(fd, 0, SEEK_SET) }
        }
        throw ManagerError("http \(r.method)", request.url, "more than \(HTTPClient.maxRedirects) redirects")
    }

    func performOnce(_ r: Request) throws -> Response {
        // libcurl speaks file, gopher, dict, smtp and more: a URL a registry chose (a token realm,
        // a redirect) must not read local files or send bytes to services on this host.
        guard let scheme = r.url.split(separator: ":", maxSplits: 1).first?.lowercased(), scheme == "http" || scheme == "https" else {
            throw ManagerError("http \(r.method)", r.url, "only http and https URLs are fetched")
        }
        let c = try HTTPClient.curl()
        guard let easy = c.initFn() else { throw ManagerError("http", r.url, "curl_easy_init failed") }
        defer { c.cleanup(easy) }
        let sink = Sink()
        sink.fd = r.sinkFd ?? -1
        sink.progress = r.progress
        sink.maxBody = r.maxBody ?? Int.max
        sink.maxWholeBody = r.headers["Range"] == nil ? nil : r.maxWholeBody
        sink.onStatus = r.onStatus
        sink.onBody = r.onBody
        let box = Unmanaged.passRetained(sink)
        defer { box.release() }
        var keep: [UnsafeMutablePointer<CChar>] = []
        defer { keep.forEach { free($0) } }
        func str(_ s: String) -> UnsafeRawPointer { let p = strdup(s)!; keep.append(p); return UnsafeRawPointer(p) }

        _ = c.setoptPtr(easy, HTTPClient.URL, str(r.url))
        _ = c.setoptLong(easy, HTTPClient.NOSIGNAL, 1)
        _ = c.setoptLong(easy, HTTPClient.CONNECTTIMEOUT, 15)
        _ = c.setoptPtr(easy, HTTPClient.USERAGENT, str("skiffctl/\(0)"))
        // A registry that stops sending ends the transfer (what arrived is kept for a resume).
        _ = c.setoptLong(easy, HTTPClient.LOW_SPEED_LIMIT, 1)
        _ = c.setoptLong(easy, HTTPClient.LOW_SPEED_TIME, stallTimeout)
        let xfer: @convention(c) (UnsafeMutableRawPointer?, Int64, Int64, Int64, Int64) -> Int32 = { _, _, _, _, _ in
            HTTPClient.interrupted != 0 ? 1 : 0
        }
        _ = c.setoptLong(easy, HTTPClient.NOPROGRESS, 0)
        _ = c.setoptPtr(easy, HTTPClient.XFERINFOFUNCTION, unsafeBitCast(xfer, to: UnsafeRawPointer.self))
        let write: @convention(c) (UnsafeMutableRawPointer?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
            let s = Unmanaged<Sink>.fromOpaque(ud!).takeUnretainedValue()
            let len = size * n
            guard let ptr, len > 0 else { return len }
            if (300..<400).contains(s.status) { return len }  // a redirect's body
            if s.received + len > s.maxBody { s.tooLarge = true; return 0 }
            if s.fd >= 0 {
                var off = 0
                while off < len {
                    let w = Glibc.write(s.fd, ptr + off, len - off)
                    if w < 0 { if errno == EINTR { continue }; s.failed = true; s.writeErrno = errno; return 0 }
                    off += w
                }
                if s.status == 200 || s.status == 206 { s.onBody?(UnsafeRawBufferPointer(start: ptr, count: len)) }
            } else {
                s.body.append(ptr.assumingMemoryBound(to: UInt8.self), count: len)
            }
            s.count(len)
            return len
        }
        let header: @convention(c) (UnsafeMutableRawPointer?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
            let s = Unmanaged<Sink>.fromOpaque(ud!).takeUnretainedValue()
            let len = size * n
            guard let ptr, len > 0 else { return len }
            let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: len), as: UTF8.self)
            if line.hasPrefix("HTTP/") {  // a new response (after a 100 continue)
                s.headers = [:]
                s.status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                if s.status == 200, let whole = s.maxWholeBody { s.maxBody = whole }
                if !(300..<400).contains(s.status) { s.onStatus?(s.status) }
            }
            if let colon = line.firstIndex(of: ":") {
                s.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return len
        }
        _ = c.setoptPtr(easy, HTTPClient.WRITEFUNCTION, unsafeBitCast(write, to: UnsafeRawPointer.self))
        _ = c.setoptPtr(easy, HTTPClient.WRITEDATA, UnsafeRawPointer(box.toOpaque()))
        _ = c.setoptPtr(easy, HTTPClient.HEADERFUNCTION, unsafeBitCast(header, to: UnsafeRawPointer.self))
        _ = c.setoptPtr(easy, HTTPClient.HEADERDATA, UnsafeRawPointer(box.toOpaque()))
        var list: OpaquePointer?
        for (k, v) in r.headers { list = c.slistAppend(list, "\(k): \(v)") }
        if r.body != nil || r.upload != nil { list = c.slistAppend(list, "Expect:") }
        defer { c.slistFree(list) }
        if let list { _ = c.setoptPtr(easy, HTTPClient.HTTPHEADER, UnsafeRawPointer(list)) }
        if r.method == "HEAD" {
            _ = c.setoptLong(easy, HTTPClient.NOBODY, 1)
        } else if r.method != "GET" {
            _ = c.setoptPtr(easy, HTTPClient.CUSTOMREQUEST, str(r.method))
        }
        var bodyCopy: UnsafeMutableRawPointer?
        if let b = r.body {
            bodyCopy = malloc(max(b.count, 1))
            b.withUnsafeBytes { if b.count > 0 { bodyCopy!.copyMemory(from: $0.baseAddress!, byteCount: b.count) } }
            _ = c.setoptLong(easy, HTTPClient.POSTFIELDSIZE, b.count)
            _ = c.setoptPtr(easy, HTTPClient.POSTFIELDS, UnsafeRawPointer(bodyCopy))
        }
        defer { free(bodyCopy) }
        if let (fd, size, _) = r.upload {
            if lseek(fd, 0, SEEK_SET) != 0 { throw ManagerError("http \(r.method)", r.url, "rewind the upload: \(String(cString: strerror(errno)))") }
            sink.uploadFd = fd
            let read: @convention(c) (UnsafeMutableRawPointer?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
                let s = Unmanaged<Sink>.fromOpaque(ud!).takeUnretainedValue()
                while true {
                    let got = Glibc.read(s.uploadFd, ptr, size * n)
                    if got >= 0 { return got }
                    if errno != EINTR { s.readErrno = errno; return HTTPClient.READFUNC_ABORT }
                }
            }
            _ = c.setoptLong(easy, HTTPClient.UPLOAD, 1)
            _ = c.setoptPtr(easy, HTTPClient.READFUNCTION, unsafeBitCast(read, to: UnsafeRawPointer.self))
            _ = c.setoptPtr(easy, HTTPClient.READDATA, UnsafeRawPointer(box.toOpaque()))
            _ = c.setoptLong(easy, HTTPClient.INFILESIZE_LARGE, size)
        }
        if skipVerify {
            _ = c.setoptLong(easy, HTTPClient.SSL_VERIFYPEER, 0)
            _ = c.setoptLong(easy, HTTPClient.SSL_VERIFYHOST, 0)
        }
        if let ca = caFile { _ = c.setoptPtr(easy, HTTPClient.CAINFO, str(ca)) }
        let rc = c.perform(easy)
        // Our own write failing (a full disk) is the cause, not curl's "failed writing" that follows.
        if sink.failed {
            throw ManagerError("store download", r.url, String(cString: strerror(sink.writeErrno)), hint: "free space where skiffctl's root is")
        }
        if sink.readErrno != 0, let source = r.upload?.source {
            // Ours, not the registry's: named so (send() rewords only http errors).
            throw ManagerError("upload: read", source, String(cString: strerror(sink.readErrno)))
        }
        if sink.tooLarge {
            if r.sinkFd != nil {  // a blob: the descriptor gave its size
                throw ManagerError(
                    "http \(r.method)", r.url, "the registry sent more than the \(sink.maxBody) bytes \(sink.status == 206 ? "left " : "")of the blob",
                    hint: "its copy is not the blob the manifest describes; nothing past the size was kept")
            }
            throw ManagerError(
                "http \(r.method)", r.url, "the response is larger than the \(sink.maxBody >> 20) MiB allowed for it",
                hint: "manifests and indexes are small; this registry's answer is not one")
        }
        if rc == HTTPClient.ABORTED_BY_CALLBACK && HTTPClient.interrupted != 0 {
            throw ManagerError(
                "http \(r.method)", r.url, "interrupted by signal \(HTTPClient.interrupted)",
                hint: "what arrived is kept; the next pull resumes it")
        }
        if rc == HTTPClient.OPERATION_TIMEDOUT && sink.status != 0 {
            throw ManagerError(
                "http \(r.method)", r.url, "the registry sent nothing for \(stallTimeout) s",
                hint: "SKIFF_PULL_PROGRESS_TIMEOUT sets the limit; what arrived is kept for the next pull")
        }
        if rc != 0 {
            let msg = c.strerror(rc).map { String(cString: $0) } ?? "curl error \(rc)"
            throw ManagerError("http \(r.method)", r.url, msg)
        }
        var code = 0
        _ = c.getinfo(easy, HTTPClient.RESPONSE_CODE, &code)
        return Response(status: code, headers: sink.headers, body: sink.body)
    }
}

/// SIGINT and SIGTERM during a transfer: noted, and the transfer stops at its next progress call
/// (what arrived stays in ingest for a resume); the command then fails with a clear message.
public enum Interrupts {
    public static var signal: Int32 { HTTPClient.interrupted }

    public static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(sig) { s in HTTPClient.interrupted = s }
        }
    }
}

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
        /// Stream the body to this fd instead of memory (blob downloads).
        var sinkFd: Int32?
        /// Told the body bytes received so far, at most every 100 ms (progress on a terminal).
        var progress: ((Int) -> Void)?
    }

    var skipVerify = false
    var caFile: String?

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
        let c = Curl(initFn: try sym("curl_easy_init", InitFn.self), setoptPtr: try sym("curl_easy_setopt", SetoptPtrFn.self),
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
               CAINFO: Int32 = 10065, NOSIGNAL: Int32 = 99, CONNECTTIMEOUT: Int32 = 78, USERAGENT: Int32 = 10018
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

        func count(_ n: Int) {
            received += n
            guard let progress else { return }
            let now = monotonicNanos()
            if now - lastReport > 100_000_000 { lastReport = now; progress(received) }
        }
    }

    func perform(_ r: Request) throws -> Response {
        let c = try HTTPClient.curl()
        guard let easy = c.initFn() else { throw ManagerError("http", r.url, "curl_easy_init failed") }
        defer { c.cleanup(easy) }
        let sink = Sink()
        sink.fd = r.sinkFd ?? -1
        sink.progress = r.progress
        let box = Unmanaged.passRetained(sink)
        defer { box.release() }
        var keep: [UnsafeMutablePointer<CChar>] = []
        defer { keep.forEach { free($0) } }
        func str(_ s: String) -> UnsafeRawPointer { let p = strdup(s)!; keep.append(p); return UnsafeRawPointer(p) }

        _ = c.setoptPtr(easy, HTTPClient.URL, str(r.url))
        _ = c.setoptLong(easy, HTTPClient.NOSIGNAL, 1)
        _ = c.setoptLong(easy, HTTPClient.CONNECTTIMEOUT, 15)
        _ = c.setoptPtr(easy, HTTPClient.USERAGENT, str("skiffctl/\(0)"))
        let write: @convention(c) (UnsafeMutableRawPointer?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
            let s = Unmanaged<Sink>.fromOpaque(ud!).takeUnretainedValue()
            let len = size * n
            guard let ptr, len > 0 else { return len }
            if s.fd >= 0 {
                var off = 0
                while off < len {
                    let w = Glibc.write(s.fd, ptr + off, len - off)
                    if w < 0 { if errno == EINTR { continue }; s.failed = true; s.writeErrno = errno; return 0 }
                    off += w
                }
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
            if line.hasPrefix("HTTP/") { s.headers = [:] } // a new response (after a 100 or a redirect)
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
        if r.body != nil { list = c.slistAppend(list, "Expect:") }
        defer { c.slistFree(list) }
        if let list { _ = c.setoptPtr(easy, HTTPClient.HTTPHEADER, UnsafeRawPointer(list)) }
        if r.method == "HEAD" { _ = c.setoptLong(easy, HTTPClient.NOBODY, 1) } else if r.method != "GET" {
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
        if rc != 0 {
            let msg = c.strerror(rc).map { String(cString: $0) } ?? "curl error \(rc)"
            throw ManagerError("http \(r.method)", r.url, msg)
        }
        var code = 0
        _ = c.getinfo(easy, HTTPClient.RESPONSE_CODE, &code)
        return Response(status: code, headers: sink.headers, body: sink.body)
    }
}

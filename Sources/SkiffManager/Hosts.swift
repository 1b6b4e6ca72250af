import Foundation

/// One place to reach a registry: a mirror or the server itself, from containerd's
/// `certs.d/<host>/hosts.toml` layout.
public struct RegistryEndpoint: Equatable {
    /// Scheme, host and API path, e.g. `http://127.0.0.1:5000/v2`.
    public var base: String
    public var capabilities: Set<String> = ["pull", "resolve", "push"]
    public var skipVerify = false
    public var ca: String?
    public var headers: [String: String] = [:]
}

/// containerd's hosts.toml tree: `<dir>/<host[:port]>/hosts.toml`, else `<dir>/_default/hosts.toml`;
/// `[host."URL"]` entries (mirrors, tried in file order) with capabilities, skip_verify, ca and
/// headers, then `server` (default `https://<host>`).
public enum RegistryHosts {
    /// `host` names the hosts.toml directory; `server` is where the API is when hosts.toml does not
    /// say (they differ for docker.io: registry-1.docker.io). Loopback registries default to http.
    public static func endpoints(host: String, server: String, dir: String, plainHTTP: Bool, skipVerify: Bool) throws -> [RegistryEndpoint] {
        let local = ["localhost", "127.0.0.1", "::1"].contains(server.split(separator: ":").first.map(String.init) ?? server)
        let defaultServer = (plainHTTP || local ? "http://" : "https://") + server
        var file = dir + "/" + host + "/hosts.toml"
        if !FileManager.default.fileExists(atPath: file) { file = dir + "/_default/hosts.toml" }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            return [RegistryEndpoint(base: api(defaultServer), skipVerify: skipVerify)]
        }
        let doc = try TOML.parse(text, file: file)
        var out: [RegistryEndpoint] = []
        for (url, table) in doc.hosts {
            var e = RegistryEndpoint(base: api(url))
            if case .array(let caps)? = table["capabilities"] { e.capabilities = Set(caps) }
            if case .bool(let b)? = table["skip_verify"] { e.skipVerify = b || skipVerify } else { e.skipVerify = skipVerify }
            if case .string(let ca)? = table["ca"] { e.ca = ca }
            if case .table(let h)? = table["header"] {
                for (k, v) in h { if case .string(let s) = v { e.headers[k] = s } else if case .array(let a) = v, let f = a.first { e.headers[k] = f } }
            }
            out.append(e)
        }
        var server = RegistryEndpoint(base: api(doc.server ?? defaultServer), skipVerify: skipVerify)
        if let sv = doc.serverSkipVerify { server.skipVerify = sv || skipVerify }
        if let ca = doc.serverCA { server.ca = ca }
        out.append(server)
        return out
    }

    /// A host URL becomes the API base: `/v2` appended unless the URL has a path (containerd's rule).
    static func api(_ url: String) -> String {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        let afterScheme = u.range(of: "://").map { u[$0.upperBound...] } ?? Substring(u)
        return afterScheme.contains("/") ? u : u + "/v2"
    }
}

/// The TOML that hosts.toml uses: `key = "string" | true/false | ["a", "b"]`, tables
/// `[host."URL"]` and `[host."URL".header]`, comments. Anything else is an error naming the line.
enum TOML {
    enum Value: Equatable { case string(String), bool(Bool), array([String]), table([String: Value]) }

    struct HostsDoc {
        var server: String?
        var serverSkipVerify: Bool?
        var serverCA: String?
        var hosts: [(String, [String: Value])] = []
    }

    static func parse(_ text: String, file: String) throws -> HostsDoc {
        var doc = HostsDoc()
        var current: (host: String, sub: String?)?
        func fail(_ n: Int, _ why: String) -> ManagerError { ManagerError("read hosts.toml", file, "line \(n): \(why)") }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail(n, "unclosed table header") }
                let keys = try splitKey(String(line.dropFirst().dropLast()))
                guard keys.count >= 2, keys[0] == "host" else { throw fail(n, "only [host.\"URL\"] tables are known") }
                current = (keys[1], keys.count > 2 ? keys[2] : nil)
                if !doc.hosts.contains(where: { $0.0 == keys[1] }) { doc.hosts.append((keys[1], [:])) }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail(n, "expected key = value") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let value = try parseValue(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces), fail: { fail(n, $0) })
            if let c = current {
                let idx = doc.hosts.firstIndex { $0.0 == c.host }!
                if let sub = c.sub {
                    var t: [String: Value] = [:]
                    if case .table(let old)? = doc.hosts[idx].1[sub] { t = old }
                    t[key] = value
                    doc.hosts[idx].1[sub] = .table(t)
                } else {
                    doc.hosts[idx].1[key] = value
                }
            } else {
                switch (key, value) {
                case ("server", .string(let s)): doc.server = s
                case ("skip_verify", .bool(let b)): doc.serverSkipVerify = b
                case ("ca", .string(let s)): doc.serverCA = s
                default: break
                }
            }
        }
        return doc
    }

    static func stripComment(_ s: String) -> String {
        var inString = false
        for (i, c) in s.enumerated() {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(s.prefix(i)) }
        }
        return s
    }

    static func splitKey(_ s: String) throws -> [String] {
        var out: [String] = [], cur = "", quoted = false
        for c in s {
            if c == "\"" { quoted.toggle(); continue }
            if c == "." && !quoted { out.append(cur.trimmingCharacters(in: .whitespaces)); cur = ""; continue }
            cur.append(c)
        }
        out.append(cur.trimmingCharacters(in: .whitespaces))
        return out
    }

    static func parseValue(_ v: String, fail: (String) -> ManagerError) throws -> Value {
        if v == "true" { return .bool(true) }
        if v == "false" { return .bool(false) }
        if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { return .string(String(v.dropFirst().dropLast())) }
        if v.hasPrefix("[") && v.hasSuffix("]") {
            let items = v.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return .array(try items.map { item in
                guard item.hasPrefix("\""), item.hasSuffix("\""), item.count >= 2 else { throw fail("array items must be strings") }
                return String(item.dropFirst().dropLast())
            })
        }
        throw fail("unsupported value \(v)")
    }
}

/// Credentials from ~/.docker/config.json (`auths.<host>.auth` = base64 user:password, or
/// username/password fields). Docker Hub is stored under its v1 index URL.
public enum DockerCredentials {
    public static func lookup(host: String, home: String? = ProcessInfo.processInfo.environment["HOME"]) -> (String, String)? {
        guard let home, let data = FileManager.default.contents(atPath: home + "/.docker/config.json"),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let auths = obj["auths"] as? [String: Any] else { return nil }
        let keys = host == "registry-1.docker.io" || host == "docker.io"
            ? ["https://index.docker.io/v1/", "docker.io", "index.docker.io"] : [host, "https://" + host, "http://" + host]
        for k in keys {
            guard let entry = auths[k] as? [String: Any] else { continue }
            if let auth = entry["auth"] as? String, let d = Data(base64Encoded: auth), let s = String(data: d, encoding: .utf8),
               let colon = s.firstIndex(of: ":") {
                return (String(s[..<colon]), String(s[s.index(after: colon)...]))
            }
            if let u = entry["username"] as? String, let p = entry["password"] as? String { return (u, p) }
        }
        return nil
    }
}

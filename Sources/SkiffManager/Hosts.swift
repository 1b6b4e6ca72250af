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
        let doc = try HostsDoc(text, file: file)
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

/// hosts.toml as a document: the top level's `server`, `skip_verify`, `ca`, and each
/// `[host."URL"]` table with its `[host."URL".header]` sub-table.
struct HostsDoc {
    var server: String?
    var serverSkipVerify: Bool?
    var serverCA: String?
    var hosts: [(String, [String: TOML.Value])] = []

    init(_ text: String, file: String) throws {
        let doc = try TOML.parse(text, file: file, what: "hosts.toml")
        if case .string(let v)? = doc.top["server"] { server = v }
        if case .bool(let v)? = doc.top["skip_verify"] { serverSkipVerify = v }
        if case .string(let v)? = doc.top["ca"] { serverCA = v }
        for t in doc.tables {
            guard t.key.count >= 2, t.key[0] == "host" else {
                throw ManagerError("read hosts.toml", file, "line \(t.line): only [host.\"URL\"] tables are known")
            }
            let url = t.key[1]
            if !hosts.contains(where: { $0.0 == url }) { hosts.append((url, [:])) }
            let idx = hosts.firstIndex { $0.0 == url }!
            if t.key.count > 2 {
                var sub: [String: TOML.Value] = [:]
                if case .table(let old)? = hosts[idx].1[t.key[2]] { sub = old }
                sub.merge(t.values) { $1 }
                hosts[idx].1[t.key[2]] = .table(sub)
            } else {
                hosts[idx].1.merge(t.values) { $1 }
            }
        }
    }
}

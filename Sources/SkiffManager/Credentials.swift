import Foundation
import SkiffJSON

/// Credentials from ~/.docker/config.json (`auths.<host>.auth` = base64 user:password, or
/// username/password fields). Docker Hub is stored under its v1 index URL.
public enum DockerCredentials {
    public static func lookup(host: String, home: String? = ProcessInfo.processInfo.environment["HOME"]) -> (String, String)? {
        guard let home, let data = FileManager.default.contents(atPath: home + "/.docker/config.json"),
            let auths = (try? JSONParser.parse([UInt8](data)))?["auths"]
        else { return nil }
        let keys =
            host == "registry-1.docker.io" || host == "docker.io"
            ? ["https://index.docker.io/v1/", "docker.io", "index.docker.io"] : [host, "https://" + host, "http://" + host]
        for k in keys {
            guard let entry = auths[k] else { continue }
            if let auth = entry["auth"]?.stringValue, let d = Data(base64Encoded: auth), let s = String(data: d, encoding: .utf8),
                let colon = s.firstIndex(of: ":")
            {
                return (String(s[..<colon]), String(s[s.index(after: colon)...]))
            }
            if let u = entry["username"]?.stringValue, let p = entry["password"]?.stringValue { return (u, p) }
        }
        return nil
    }
}

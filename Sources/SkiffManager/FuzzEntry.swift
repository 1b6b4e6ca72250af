import Foundation

/// What the fuzzers and the corpus replay test feed untrusted bytes to.
public enum FuzzEntry {
    public static func tarAndImageJSON(_ bytes: [UInt8]) {
        var offset = 0
        let tar = TarReader { n in
            let chunk = Array(bytes[offset..<min(offset + n, bytes.count)])
            offset += chunk.count
            return chunk
        }
        var entries = 0
        while entries < 256, let h = try? tar.next() {
            entries += 1
            _ = try? LayerApplier.clean(h.name)
            if case .file = h.kind { _ = try? tar.body() }
        }
        let data = Data(bytes)
        _ = try? JSONDecoder().decode(ImageIndex.self, from: data)
        _ = try? JSONDecoder().decode(ImageManifest.self, from: data)
        _ = try? JSONDecoder().decode(ImageConfig.self, from: data)
        if let s = String(data: data, encoding: .utf8) { _ = try? ImageRef.normalize(s) }
    }
}

import SkiffJSON
import SkiffManager
import SkiffSpec
import SkiffTTRPC
import SkiffWire

/// What the fuzzers (scripts/fuzz.sh) and the corpus replay test (FuzzCorpusTests) feed untrusted
/// bytes to: one function per parser family. Any input may be rejected; none may crash or hang.
public enum FuzzTargets {
    /// config.json bytes through the decoder and validation, and the same bytes as an
    /// `exec --process` process.json. Returns whether the bytes decoded as a spec.
    @discardableResult
    public static func spec(_ bytes: [UInt8]) -> Bool {
        let spec = try? JSON.decode(Spec.self, from: bytes, what: "fuzz")
        if let spec {
            _ = try? Validation.validate(spec, bundle: "/nonexistent-bundle")
            _ = try? JSON.encode(spec)
        }
        if let process = try? JSON.decode(SkiffSpec.Process.self, from: bytes, what: "fuzz") {
            _ = try? Validation.validateProcess(process)
        }
        return spec != nil
    }

    /// Bytes as a ttrpc stream (frames), each frame's data as a request and as every task
    /// message the shim decodes from a caller; the whole input as a response, an event and metrics.
    public static func wire(_ bytes: [UInt8]) {
        var reader = FrameReader()
        reader.append(bytes)
        var frames = 0
        while let e = reader.next(), frames < 64 {
            frames += 1
            guard case .frame(let f) = e else { continue }
            if let req = try? TTRPCRequest(protoBytes: f.data) {
                _ = try? CreateTaskRequest(protoBytes: req.payload)
                _ = try? ExecProcessRequest(protoBytes: req.payload)
                _ = try? UpdateTaskRequest(protoBytes: req.payload)
            }
        }
        _ = try? TTRPCResponse(protoBytes: bytes)
        _ = try? ForwardRequest(protoBytes: bytes)
        _ = try? Metrics(protoBytes: bytes)
    }

    /// Bytes as a tar stream (ustar, GNU long names, pax; reading only, nothing is written) and as
    /// image JSON documents and a reference.
    public static func tar(_ bytes: [UInt8]) {
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
        _ = try? JSONCoder.decode(ImageIndex.self, from: bytes)
        _ = try? JSONCoder.decode(ImageManifest.self, from: bytes)
        _ = try? JSONCoder.decode(ImageConfig.self, from: bytes)
        if let s = String(validating: bytes, as: UTF8.self) { _ = try? ImageRef.normalize(s) }
    }
}

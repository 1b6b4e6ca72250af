import SkiffWire
import SkiffTTRPC
import FuzzSupport

/// libFuzzer target (scripts/fuzz.sh): bytes as a ttrpc stream (frames), and each frame's data
/// as a request and as every task message the shim decodes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
    return 0
}

#if FUZZING
    /// SwiftPM names an executable's entry point `<module>_main`: libFuzzer's driver takes it.
    @_cdecl("FuzzWire_main")
    func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        fuzzDriverMain(argc, argv, fuzzWire)
    }
#else
    @main
    enum FuzzWireReplay {
        static func main() { replayFiles(fuzzWire) }
    }
#endif

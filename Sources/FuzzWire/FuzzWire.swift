import SkiffWire
import SkiffTTRPC

/// libFuzzer target (fixtures/fuzz.sh): bytes as a ttrpc stream (frames), and each frame's data
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
/// SwiftPM names an executable's entry point `<module>_main`; with libFuzzer linked in, it hands
/// control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzWire_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return runDriver(&c, &v, fuzzWire)
}
#else
import Foundation

/// Without libFuzzer: replays the files named on the command line (a crash reproducer).
@main
enum FuzzWireReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let d = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](d)
            _ = bytes.withUnsafeBufferPointer { fuzzWire($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
        }
    }
}
#endif

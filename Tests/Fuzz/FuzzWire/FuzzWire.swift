import FuzzSupport
import FuzzTargets

/// libFuzzer target (scripts/fuzz.sh): bytes as a ttrpc stream (frames), and each frame's data
/// as a request and as every task message the shim decodes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.wire(Array(UnsafeBufferPointer(start: data, count: size)))
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

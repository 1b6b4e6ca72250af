import FuzzSupport
import FuzzTargets

/// libFuzzer target (scripts/fuzz.sh): config.json bytes through the decoder and validation,
/// and the same bytes as an `exec --process` process.json. Any input may be rejected; none may
/// crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.spec(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if FUZZING
    /// SwiftPM names an executable's entry point `<module>_main`: libFuzzer's driver takes it.
    @_cdecl("FuzzSpec_main")
    func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        fuzzDriverMain(argc, argv, fuzzSpec)
    }
#else
    @main
    enum FuzzSpecReplay {
        static func main() { replayFiles(fuzzSpec) }
    }
#endif

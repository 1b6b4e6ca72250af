import FuzzSupport
import FuzzTargets

/// libFuzzer target (scripts/fuzz.sh): bytes as a tar stream (ustar, GNU long names, pax) and as
/// image JSON documents; reading only, nothing is written.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.tar(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if FUZZING
    /// SwiftPM names an executable's entry point `<module>_main`: libFuzzer's driver takes it.
    @_cdecl("FuzzTar_main")
    func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        fuzzDriverMain(argc, argv, fuzzTar)
    }
#else
    @main
    enum FuzzTarReplay {
        static func main() { replayFiles(fuzzTar) }
    }
#endif

import SkiffManager

/// libFuzzer target (fixtures/fuzz.sh): bytes as a tar stream (ustar, GNU long names, pax) and as
/// image JSON documents; reading only, nothing is written.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzEntry.tarAndImageJSON(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

#if FUZZING
/// SwiftPM names an executable's entry point `<module>_main`; with libFuzzer linked in, it hands
/// control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzTar_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return runDriver(&c, &v, fuzzTar)
}
#else
import Foundation

/// Without libFuzzer: replays the files named on the command line (a crash reproducer).
@main
enum FuzzTarReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let d = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](d)
            _ = bytes.withUnsafeBufferPointer { fuzzTar($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
        }
    }
}
#endif

import SkiffSpec

/// libFuzzer target (fixtures/fuzz.sh): config.json bytes through the decoder and validation,
/// and the same bytes as an `exec --process` process.json. Any input may be rejected; none may
/// crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let spec = try? JSON.decode(Spec.self, from: bytes, what: "fuzz") {
        _ = try? Validation.validate(spec, bundle: "/nonexistent-bundle")
        _ = try? JSON.encode(spec)
    }
    if let process = try? JSON.decode(SkiffSpec.Process.self, from: bytes, what: "fuzz") {
        _ = try? Validation.validateProcess(process)
    }
    return 0
}

#if FUZZING
/// SwiftPM names an executable's entry point `<module>_main`; with libFuzzer linked in, it hands
/// control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzSpec_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return runDriver(&c, &v, fuzzSpec)
}
#else
import Foundation

/// Without libFuzzer: replays the files named on the command line (a crash reproducer).
@main
enum FuzzSpecReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let d = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](d)
            _ = bytes.withUnsafeBufferPointer { fuzzSpec($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
        }
    }
}
#endif

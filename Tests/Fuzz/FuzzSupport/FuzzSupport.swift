import SkiffSys

/// What the libFuzzer targets (Tests/Fuzz/*, built by scripts/fuzz.sh) share: handing control
/// to libFuzzer's driver, and, without libFuzzer, replaying files through the target.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ cb: FuzzTarget
    ) -> CInt

    /// With libFuzzer linked in: its driver takes the command line and calls `target`.
    public func fuzzDriverMain(
        _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ target: FuzzTarget
    ) -> Int32 {
        var c = argc
        var v = argv
        return runDriver(&c, &v, target)
    }
#endif

/// Without libFuzzer: runs `target` on each file named on the command line (a crash reproducer).
public func replayFiles(_ target: FuzzTarget) {
    for path in CommandLine.arguments.dropFirst() {
        guard let bytes = try? FS.readBytes(path) else { continue }
        _ = bytes.withUnsafeBufferPointer { target($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
    }
}

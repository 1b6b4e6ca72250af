import Glibc
import SkiffSys
import SkiffRuntime
import SkiffShim
import SkiffWire

// containerd-shim-skiff-v2: thin entry point; the shim lives in SkiffShim.
let argv = CommandLine.arguments
let args: ShimArguments
do {
    args = try ShimArguments.parse(Array(argv.dropFirst()))
} catch {
    FS.writeStderr("containerd-shim-skiff-v2: \(error)\n")
    exit(2)
}

if args.version {
    FS.writeStdout("containerd-shim-skiff-v2:\n  Version: \(SkiffVersion.version)\n  Runtime: skiff (in-process)\n")
    exit(0)
}

switch args.action {
case "start":
    do {
        let address = try ShimManager.start(args, argv0: argv[0])
        FS.writeStdout(address)
        exit(0)
    } catch {
        FS.writeStderr("containerd-shim-skiff-v2 start: \(error)\n")
        exit(1)
    }
case "delete":
    let bytes = ShimManager.delete(args).protoBytes()
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    exit(0)
case "":
    ShimManager.runDaemon(args)
default:
    FS.writeStderr("containerd-shim-skiff-v2: unknown action \(quote(args.action)); want start or delete\n")
    exit(2)
}

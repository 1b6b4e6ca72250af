// swift-tools-version:6.0
import PackageDescription

// The runtime (`skiff`) is split youki-style: libraries by concern, a thin CLI on top.
// Nothing on the runtime path depends on Foundation or on a third-party package, so the
// static build stays small and fast to compile.
let package = Package(
    name: "Skiff",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "skiff", targets: ["skiff"]),
        .executable(name: "containerd-shim-skiff-v2", targets: ["containerd-shim-skiff-v2"]),
        .executable(name: "skiffctl", targets: ["skiffctl"]),
        .library(name: "SkiffRuntime", targets: ["SkiffRuntime"]),
    ],
    dependencies: [
        // Tests only: swift-protobuf's generated code (committed; no protoc plugin in CI) checks the
        // shim's hand-written codec. The shim itself must not link it (FoundationEssentials,
        // libdispatch and ICU data would make it ~70 MB larger and ~9 MB bigger in memory).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // The manager only (it may use Foundation and async): command-line parsing.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Thin C: syscalls and macros that Swift's Glibc module does not expose.
        .target(name: "CSkiffSys"),
        // libcap through a modulemap; linked statically (see SkiffCaps' linker settings).
        .systemLibrary(name: "CCap", path: "Sources/CCap"),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp"),

        .target(name: "SkiffSys", dependencies: ["CSkiffSys", "SkiffJSON"]),
        .target(name: "SkiffJSON"),
        .target(name: "SkiffSpec", dependencies: ["SkiffSys", "SkiffJSON"]),
        .target(name: "SkiffCgroups", dependencies: ["SkiffSys", "SkiffSpec", "SkiffJSON", "CSkiffSys"]),
        .target(name: "SkiffCaps", dependencies: ["SkiffSys", "CCap"],
                linkerSettings: [.linkedLibrary(":libcap.a")]),
        .target(name: "SkiffSeccomp", dependencies: ["SkiffSys", "SkiffSpec", "CSeccomp"],
                linkerSettings: [.linkedLibrary(":libseccomp.a")]),
        .target(name: "SkiffRootfs", dependencies: ["SkiffSys", "SkiffSpec", "CSkiffSys"]),
        // The runtime's state directory (records, locks, status): shared with skiffctl.
        .target(name: "SkiffState", dependencies: ["SkiffSys", "SkiffSpec", "SkiffCgroups"]),
        .target(name: "SkiffRuntime",
                dependencies: ["SkiffSys", "SkiffSpec", "SkiffState", "SkiffRootfs", "SkiffCgroups", "SkiffCaps", "SkiffSeccomp", "SkiffJSON", "CSkiffSys"]),
        // Swift 5 mode: in Swift 6 top-level code is main-actor isolated, and its executor checks
        // pull the concurrency runtime into every command (measured: ~250 KB more resident text).
        .executableTarget(name: "skiff", dependencies: ["SkiffRuntime", "SkiffState"], swiftSettings: [.swiftLanguageMode(.v5)]),

        // containerd-shim-skiff-v2 building blocks: ttrpc, messages, log targets.
        .target(name: "SkiffWire"),
        // The shim's one thread: an epoll loop with timers (no ttrpc in it; the shim's IO runs on it too).
        .target(name: "SkiffEventLoop", dependencies: ["SkiffSys", "CSkiffSys"]),
        .target(name: "SkiffTTRPC", dependencies: ["SkiffSys", "CSkiffSys", "SkiffWire", "SkiffEventLoop"]),
        // All of the shim's IO: process stdio (FIFOs, ptys, pumps on the event loop) and log targets.
        .target(name: "SkiffShimIO", dependencies: ["SkiffSys", "CSkiffSys", "SkiffEventLoop"]),
        // The shim: manager (start/delete/daemon), task service, process IO, over the runtime library.
        .target(name: "SkiffShim",
                dependencies: ["SkiffSys", "CSkiffSys", "SkiffSpec", "SkiffJSON", "SkiffCgroups", "SkiffRuntime", "SkiffRootfs", "SkiffTTRPC", "SkiffEventLoop",
                               "SkiffShimIO", "SkiffWire"]),
        .executableTarget(name: "containerd-shim-skiff-v2",
                          dependencies: ["SkiffShim", "SkiffSys", "SkiffRuntime", "SkiffWire"]),
        // skiffctl: metadata in SQLite (the system library), gzip layers through zlib.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .target(name: "SkiffManager",
                dependencies: ["SkiffSys", "CSkiffSys", "SkiffJSON", "SkiffSpec", "SkiffCgroups", "SkiffState", "SkiffTTRPC", "SkiffWire", "CSQLite", "CZlib", "CZstd"]),
        .executableTarget(name: "skiffctl",
                          dependencies: ["SkiffManager", "SkiffTTRPC", "SkiffSys", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // libFuzzer targets: built only by scripts/fuzz.sh (with -sanitize=fuzzer); their
        // corpora under fixtures/fuzz are replayed by the tests.
        // Test-only code lives under Tests/: the fuzz entry points and the swift-protobuf
        // reference messages SkiffWire is checked against.
        .target(name: "FuzzSupport", dependencies: ["SkiffSys"], path: "Tests/Fuzz/FuzzSupport"),
        .target(name: "FuzzTargets", dependencies: ["SkiffSpec", "SkiffWire", "SkiffTTRPC", "SkiffManager"], path: "Tests/Fuzz/FuzzTargets"),
        .executableTarget(name: "FuzzSpec", dependencies: ["FuzzTargets", "FuzzSupport"], path: "Tests/Fuzz/FuzzSpec"),
        .executableTarget(name: "FuzzWire", dependencies: ["FuzzTargets", "FuzzSupport"], path: "Tests/Fuzz/FuzzWire"),
        .executableTarget(name: "FuzzTar", dependencies: ["FuzzTargets", "FuzzSupport"], path: "Tests/Fuzz/FuzzTar"),
        .target(name: "SkiffProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
                path: "Tests/Support/SkiffProto", exclude: ["proto"]),

        .testTarget(name: "SkiffUnitTests",
                    dependencies: ["SkiffSpec", "SkiffSys", "SkiffRootfs", "SkiffCgroups", "SkiffCaps", "SkiffState", "SkiffRuntime", "SkiffJSON",
                                   "SkiffManager"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "SkiffTTRPCTests", dependencies: ["SkiffTTRPC", "SkiffEventLoop", "SkiffWire", "SkiffProto", "SkiffSys", "CSkiffSys",
                                                        .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "SkiffShimTests", dependencies: ["SkiffShim", "SkiffShimIO", "SkiffSys", "SkiffWire", "SkiffSpec", "SkiffTTRPC",
                                                       "SkiffManager", "FuzzTargets"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "SkiffIntegrationTests", dependencies: ["SkiffSys", "CSkiffSys", "SkiffTTRPC", "SkiffEventLoop", "SkiffWire"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)

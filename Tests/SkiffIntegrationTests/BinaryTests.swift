import Foundation
import XCTest

/// How the shipped `skiff` is built: the properties the benchmark figures rest on.
final class BinaryTests: XCTestCase {
    /// Fully static (no interpreter, no shared libraries), and linked with fixtures/skiff.order:
    /// the functions a `run` calls come first in .text. If the order file stopped applying (a
    /// flag lost in scripts/setup.sh, a linker change), `main` would land somewhere in the middle of the
    /// 7 MB of text and a run would keep ~2 MB more of it resident.
    func testStaticAndLinkedInCallOrder() throws {
        guard let nm = Env.which("nm"), let readelf = Env.which("readelf") else {
            throw XCTSkip("binutils (nm, readelf) not installed")
        }
        let headers = Cmd.run(readelf, ["-lW", Env.skiff])
        XCTAssertEqual(headers.code, 0, headers.stderr)
        XCTAssertFalse(headers.stdout.contains("INTERP"), "skiff asks for a dynamic loader")
        XCTAssertFalse(headers.stdout.contains("DYNAMIC"), "skiff has dynamic sections")

        let syms = Cmd.run(nm, [Env.skiff])
        XCTAssertEqual(syms.code, 0, syms.stderr)
        var addr: [String: UInt64] = [:]
        for line in syms.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3, ["_start", "skiff_main", "__libc_start_main"].contains(String(f[2])) {
                addr[String(f[2])] = UInt64(f[0], radix: 16)
            }
        }
        let start = try XCTUnwrap(addr["_start"]), libcStart = try XCTUnwrap(addr["__libc_start_main"])
        let main = try XCTUnwrap(addr["skiff_main"])
        // The order file starts with _start and the C library's start-up, which source order
        // puts megabytes apart (libc.a is linked last), then soon our main.
        XCTAssertLessThan(libcStart &- start, 64 << 10, "__libc_start_main is far from _start: the order file did not apply")
        XCTAssertLessThan(main &- start, 1 << 20, "skiff_main is far from _start: the order file did not apply")

        // And the order file in the tree is the one linked in: every function of skiff's own
        // modules it lists lies before every one it does not (one section per function). SwiftPM
        // does not see the order file as an input, so a regenerated file without a relink (which
        // scripts/setup.sh now forces) left 662 listed functions among the rest, and ~0.6 MB more
        // of a `run`'s text resident.
        let order = Set(
            try String(contentsOfFile: Env.packageRoot + "/fixtures/skiff.order", encoding: .utf8).split(separator: "\n").map(String.init))
        let own = ["5skiff", "12SkiffRuntime", "8SkiffSys", "9SkiffSpec", "9SkiffJSON", "10SkiffState", "11SkiffRootfs", "12SkiffCgroups", "9SkiffCaps"]
        var lastListed: (UInt64, String) = (0, ""), firstUnlisted: (UInt64, String) = (.max, "")
        for line in syms.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 3, f[1] == "t" || f[1] == "T", own.contains(where: { f[2].hasPrefix("$s" + $0) }), let a = UInt64(f[0], radix: 16) else {
                continue
            }
            let name = String(f[2])
            if order.contains(name) {
                if a > lastListed.0 { lastListed = (a, name) }
            } else if a < firstUnlisted.0 {
                firstUnlisted = (a, name)
            }
        }
        XCTAssertGreaterThan(lastListed.0, 0, "no function of fixtures/skiff.order is in skiff")
        XCTAssertLessThan(
            lastListed.0, firstUnlisted.0,
            "\(lastListed.1) (listed) lies after \(firstUnlisted.1) (not listed): skiff was not linked with fixtures/skiff.order; relink it")
    }
    /// `skiff` and the shim never link Foundation (the architecture rule: ~1 MB of RSS and
    /// start-up work per call, and threads the runtime path must not have). A symbol of
    /// Foundation, FoundationEssentials or FoundationInternationalization in either fails this;
    /// skiffctl, which may use it, is the positive control that the check sees them.
    func testRuntimeAndShimDoNotLinkFoundation() throws {
        guard let nm = Env.which("nm") else { throw XCTSkip("binutils (nm) not installed") }
        func foundationSymbols(_ binary: String) -> Int {
            let r = Cmd.run(nm, [binary])
            XCTAssertEqual(r.code, 0, r.stderr)
            return r.stdout.split(separator: "\n").filter {
                $0.contains("10Foundation") || $0.contains("20FoundationEssentials") || $0.contains("32FoundationInternationalization")
            }.count
        }
        XCTAssertEqual(foundationSymbols(Env.skiff), 0, "skiff links Foundation")
        XCTAssertEqual(foundationSymbols(Env.shim), 0, "containerd-shim-skiff-v2 links Foundation")
        if FileManager.default.isExecutableFile(atPath: Env.skiffctl) {
            XCTAssertGreaterThan(foundationSymbols(Env.skiffctl), 0, "the check finds Foundation where it is linked")
        }
    }

    /// skiffctl reaches the runtime only through the shim (as containerd does): it links the
    /// runtime's state directory reader (SkiffState), not the runtime itself, nor libcap and
    /// libseccomp. The shim, which runs the runtime in-process, is the positive control.
    func testSkiffctlDoesNotLinkTheRuntime() throws {
        guard let nm = Env.which("nm") else { throw XCTSkip("binutils (nm) not installed") }
        guard FileManager.default.isExecutableFile(atPath: Env.skiffctl) else { throw XCTSkip("skiffctl not built (\(Env.skiffctl))") }
        func runtimeSymbols(_ binary: String) -> (runtime: Int, seccomp: Int, cap: Int) {
            let r = Cmd.run(nm, [binary])
            XCTAssertEqual(r.code, 0, r.stderr)
            let lines = r.stdout.split(separator: "\n")
            return (
                lines.filter { $0.contains("12SkiffRuntime") }.count, lines.filter { $0.hasSuffix(" seccomp_init") }.count,
                lines.filter { $0.hasSuffix(" cap_get_proc") || $0.hasSuffix(" capset") }.count
            )
        }
        let ctl = runtimeSymbols(Env.skiffctl)
        XCTAssertEqual(ctl.runtime, 0, "skiffctl links SkiffRuntime")
        XCTAssertEqual(ctl.seccomp, 0, "skiffctl links libseccomp")
        XCTAssertEqual(ctl.cap, 0, "skiffctl links libcap")
        let shim = runtimeSymbols(Env.shim)
        XCTAssertGreaterThan(shim.runtime, 0, "the check finds SkiffRuntime where it is linked")
        XCTAssertGreaterThan(shim.seccomp, 0, "the check finds libseccomp where it is linked")
    }
}

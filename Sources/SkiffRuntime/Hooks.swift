import Glibc
import SkiffSys
import SkiffSpec

public enum HookRunner {
    /// Runs hooks of one kind in order with the state JSON on stdin; stops at the first failure.
    public static func run(_ kind: String, _ hooks: [Hook]?, state: OCIState) throws {
        guard let hooks, !hooks.isEmpty else { return }
        let stdin = try JSON.encode(state)
        for (i, h) in hooks.enumerated() {
            let r: SpawnResult
            do {
                r = try Spawn.run(path: h.path, args: h.args ?? [h.path], env: h.env ?? [], stdin: stdin, timeout: h.timeout)
            } catch let e as SkiffError {
                throw e.wrapped("\(kind) hook #\(i)")
            }
            if r.timedOut {
                throw SkiffError.msg("\(kind) hook #\(i) \(quote(h.path)): ran past its timeout of \(h.timeout ?? 0)s and was killed")
            }
            if r.status != 0 {
                let out = r.outputText
                throw SkiffError.msg("\(kind) hook #\(i) \(quote(h.path)): exited with status \(exitCode(fromWaitStatus: r.status))" +
                                     (out.isEmpty ? "" : ", output: \(out)"))
            }
        }
    }
}

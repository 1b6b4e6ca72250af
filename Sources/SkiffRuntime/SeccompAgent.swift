import Glibc
import CSkiffSys
import SkiffSys
import SkiffSpec
import SkiffSeccomp

/// SCMP_ACT_NOTIFY: a container process loads its filter and reports the notify fd's number
/// over the sync socket; the runtime takes a copy with pidfd_getfd and hands it to the agent at
/// linux.seccomp.listenerPath (runtime-spec: one SCM_RIGHTS fd with the container process state
/// as payload). Done here, in the runtime, so the agent gets the pid as the host sees it, and
/// for `exec` as for the init (runc does both in its parent too).
enum SeccompAgent {
    static func handOff(remoteFd: Int32, of pid: pid_t, seccomp: Seccomp, state: OCIState) throws {
        try withContext("seccomp listener \(quote(seccomp.listenerPath ?? ""))") {
            let pidfd = skiff_pidfd_open(pid, 0)
            if pidfd < 0 { throw SkiffError.sys("pidfd_open", "pid \(pid)") }
            defer { close(pidfd) }
            let fd = skiff_pidfd_getfd(pidfd, remoteFd)
            if fd < 0 { throw SkiffError.sys("pidfd_getfd", "pid \(pid) fd \(remoteFd)") }
            defer { close(fd) }
            let sock = try Sys.connectUnix(seccomp.listenerPath ?? "")
            defer { close(sock) }
            try Sys.sendFd(sock, fd, payload: try payload(pid: pid, seccomp: seccomp, state: state))
        }
    }

    static func payload(pid: pid_t, seccomp: Seccomp, state: OCIState) throws -> String {
        var s = "{\"ociVersion\":\(jsonString(state.ociVersion)),\"fds\":[\"seccompFd\"],\"pid\":\(pid)"
        if let m = seccomp.listenerMetadata { s += ",\"metadata\":\(jsonString(m))" }
        return s + ",\"state\":" + (try JSON.encodeString(state)) + "}"
    }

    /// The child's side: load `filter`; with notify rules, report the fd and wait until the
    /// runtime has it.
    static func load(_ filter: SeccompFilter, sync: SyncSocket) throws {
        try filter.load()
        guard filter.usesNotify else { return }
        let fd = try filter.notifyFd()
        defer { close(fd) }
        try sync.send(.seccompFd(fd))
        try sync.expect(.seccompDone)
    }
}

import Glibc
import SkiffSys
import SkiffSpec

/// AppArmor profiles and SELinux labels (process.apparmorProfile, process.selinuxLabel,
/// linux.mountLabel). Applied when the host runs that LSM. When it does not, a config that asks
/// for one fails before anything is created: runc fails too (on this kind of host it cannot
/// write /proc/self/attr/exec, or refuses the SELinux label), only later and less clearly.
enum LSM {
    static var appArmorEnabled: Bool {
        (try? FS.readString("/sys/module/apparmor/parameters/enabled"))?.hasPrefix("Y") == true
    }
    static var seLinuxEnabled: Bool { FS.exists("/sys/fs/selinux/enforce") }

    /// In the runtime, before anything is made.
    static func check(_ process: Process, mountLabel: String?) throws {
        if let p = process.apparmorProfile, !p.isEmpty, !appArmorEnabled {
            throw SkiffError.msg(
                "process.apparmorProfile \(quote(p)): AppArmor is not enabled on this host",
                hint: "remove the profile, or run on a host with AppArmor")
        }
        if let l = process.selinuxLabel, !l.isEmpty, !seLinuxEnabled {
            throw SkiffError.msg(
                "selinux label is specified in config, but selinux is disabled or not supported",
                hint: "process.selinuxLabel \(quote(l))")
        }
        if let l = mountLabel, !l.isEmpty, !seLinuxEnabled {
            throw SkiffError.msg("linux.mountLabel \(quote(l)): SELinux is not enabled on this host")
        }
    }

    /// In the container process before execve: the profile and label it gets when it execs.
    static func applyOnExec(_ process: Process) throws {
        if let p = process.apparmorProfile, !p.isEmpty {
            let attr = FS.exists("/proc/self/attr/apparmor/exec") ? "attr/apparmor/exec" : "attr/exec"
            try withContext("apply apparmor profile \(quote(p))") { try ProcSelf.write(attr, "exec " + p) }
        }
        if let l = process.selinuxLabel, !l.isEmpty {
            try withContext("apply selinux label \(quote(l))") { try ProcSelf.write("attr/exec", l) }
        }
    }
}

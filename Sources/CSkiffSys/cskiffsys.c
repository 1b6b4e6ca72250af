#define _GNU_SOURCE
#include <sys/vfs.h>
#include "cskiffsys.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>
#include <sys/mman.h>
#include <malloc.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <linux/openat2.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/sendfile.h>

pid_t skiff_clone_fork(unsigned long flags) {
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}
pid_t skiff_clone3_fork(uint64_t flags, int cgroup_fd) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags;
    /* With CLONE_PARENT the child inherits our exit signal; clone3 refuses one given explicitly. */
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (cgroup_fd >= 0) { args.flags |= CLONE_INTO_CGROUP; args.cgroup = (uint64_t)cgroup_fd; }
    return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}
int skiff_unshare(int flags) { return unshare(flags); }
int skiff_setns(int fd, int nstype) { return setns(fd, nstype); }
int skiff_pivot_root(const char *n, const char *o) { return (int)syscall(SYS_pivot_root, n, o); }
int skiff_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int skiff_prctl(int o, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(o, a2, a3, a4, a5);
}
int skiff_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}
int skiff_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
long skiff_fs_type(int fd) {
    struct statfs s;
    return fstatfs(fd, &s) == 0 ? (long)s.f_type : -1;
}
int skiff_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags; how.mode = mode; how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
int skiff_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
int skiff_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
int skiff_pidfd_getfd(int pidfd, int targetfd) { return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, 0); }
#ifndef SKIFF_COMMIT
#define SKIFF_COMMIT "unknown"
#endif
const char *skiff_build_commit(void) { return SKIFF_COMMIT; }
pid_t skiff_gettid(void) { return (pid_t)syscall(SYS_gettid); }
dev_t skiff_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }
unsigned int skiff_major(dev_t d) { return major(d); }
unsigned int skiff_minor(dev_t d) { return minor(d); }

int skiff_ioctl_int(int fd, unsigned long req, int *arg) { return ioctl(fd, req, arg); }
int skiff_ioctl_ptr(int fd, unsigned long req, void *arg) { return ioctl(fd, req, arg); }
int skiff_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
int skiff_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws; memset(&ws, 0, sizeof ws); ws.ws_row = rows; ws.ws_col = cols;
    return ioctl(fd, TIOCSWINSZ, &ws);
}
int skiff_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws; int r = ioctl(fd, TIOCGWINSZ, &ws);
    if (r == 0) { *rows = ws.ws_row; *cols = ws.ws_col; }
    return r;
}
int skiff_pty_unlock(int fd) { int u = 0; return ioctl(fd, TIOCSPTLCK, &u); }
int skiff_pty_number(int fd, unsigned int *n) { return ioctl(fd, TIOCGPTN, n); }
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
int skiff_pty_peer(int fd, int flags) { return ioctl(fd, TIOCGPTPEER, flags); }
int skiff_fcntl_setfd(int fd, int flags) { return fcntl(fd, F_SETFD, flags); }
int skiff_fcntl_getfd(int fd) { return fcntl(fd, F_GETFD); }
int skiff_fcntl_dupfd(int fd, int min) { return fcntl(fd, F_DUPFD_CLOEXEC, min); }
int skiff_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
int skiff_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }

int skiff_send_fd(int sock, int fd, const void *data, size_t len) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg); memset(control, 0, sizeof control);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

int skiff_recv_fd(int sock, void *data, size_t cap, size_t *len) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = data, .iov_len = cap };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = sizeof control;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    *len = (size_t)r;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
        errno = EBADMSG; return -1;
    }
    int fd; memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}
int skiff_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int skiff_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }
int skiff_getresuid(uid_t *r, uid_t *e, uid_t *s) { return getresuid(r, e, s); }
int skiff_getresgid(gid_t *r, gid_t *e, gid_t *s) { return getresgid(r, e, s); }


int skiff_bpf_load_device_prog(const void *insns, unsigned int count, char *log, unsigned int log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insn_cnt = count;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.license = (uint64_t)(uintptr_t)"Apache";
    if (log && log_size) { attr.log_level = 1; attr.log_buf = (uint64_t)(uintptr_t)log; attr.log_size = log_size; }
    return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
}

int skiff_bpf_attach_device_prog(int cgroup_fd, int prog_fd) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    return (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr);
}

int skiff_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int skiff_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event ev; memset(&ev, 0, sizeof ev);
    ev.events = events; ev.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &ev);
}
int skiff_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { fds[i] = evs[i].data.fd; events[i] = evs[i].events; }
    return n;
}
int skiff_signalfd_for(const int *sigs, int n) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
int skiff_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n != (ssize_t)sizeof si) return -1;
    return (int)si.ssi_signo;
}
int skiff_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }


/* Drops the resident pages of the given read-only file mappings and free heap, then sleeps in
 * epoll_wait until an fd is ready (events stay pending: the loop is level-triggered). All in C so
 * that nothing between the madvise and the sleep faults the pages back in. */
int skiff_release_and_wait(int epfd, const unsigned long *addrs, const unsigned long *lens, int n) {
    for (int i = 0; i < n; i++) madvise((void *)addrs[i], lens[i], MADV_DONTNEED);
    malloc_trim(0);
    struct epoll_event ev;
    int r;
    do { r = epoll_wait(epfd, &ev, 1, -1); } while (r < 0 && errno == EINTR);
    return r;
}

int skiff_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}

/* fsopen/fsconfig/fsmount have no glibc wrappers in Debian 12's glibc 2.36. */
int skiff_fsopen(const char *fstype) { return (int)syscall(SYS_fsopen, fstype, 1 /* FSOPEN_CLOEXEC */); }
int skiff_fsconfig_string(int fsfd, const char *key, const char *value) {
    return (int)syscall(SYS_fsconfig, fsfd, 1 /* FSCONFIG_SET_STRING */, key, value, 0);
}
int skiff_fsconfig_create(int fsfd) { return (int)syscall(SYS_fsconfig, fsfd, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0); }
int skiff_fsmount(int fsfd, unsigned int attrs) { return (int)syscall(SYS_fsmount, fsfd, 1 /* FSMOUNT_CLOEXEC */, attrs); }
int skiff_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }
int skiff_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals); }
int skiff_get_seals(int fd) { return fcntl(fd, F_GET_SEALS); }
long skiff_sendfile(int out, int in, size_t count) { return (long)sendfile(out, in, NULL, count); }

/* struct mount_attr from <linux/mount.h>, which clashes with glibc 2.36's <sys/mount.h>. */
struct skiff_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
int skiff_open_tree(int dirfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dirfd, path, flags | O_CLOEXEC);
}
int skiff_move_mount(int from_fd, const char *from_path, int to_fd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_fd, from_path, to_fd, to_path, flags);
}
int skiff_mount_setattr(int fd, const char *path, unsigned int flags, uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, int userns_fd) {
    struct skiff_mount_attr a = { attr_set, attr_clr, propagation, userns_fd < 0 ? 0 : (uint64_t)userns_fd };
    return (int)syscall(SYS_mount_setattr, fd, path, flags, &a, sizeof a);
}
int skiff_fsconfig_flag(int fsfd, const char *key) { return (int)syscall(SYS_fsconfig, fsfd, 0 /* FSCONFIG_SET_FLAG */, key, NULL, 0); }

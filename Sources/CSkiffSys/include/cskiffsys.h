/* Thin syscall wrappers and constants that Swift's Glibc module does not expose.
 * No logic lives here: every function is one syscall (or one macro) with errno semantics. */
#ifndef CSKIFFSYS_H
#define CSKIFFSYS_H
#include <sys/types.h>
#include <stdint.h>
#include <linux/sched.h>
#include <sys/auxv.h> /* getauxval */

/* CLONE_* come from <linux/sched.h>; re-export the ones Swift sees as macros it cannot import. */
static const unsigned long SKIFF_CLONE_NEWNS = CLONE_NEWNS;
static const unsigned long SKIFF_CLONE_NEWUTS = CLONE_NEWUTS;
static const unsigned long SKIFF_CLONE_NEWIPC = CLONE_NEWIPC;
static const unsigned long SKIFF_CLONE_NEWUSER = CLONE_NEWUSER;
static const unsigned long SKIFF_CLONE_NEWPID = CLONE_NEWPID;
static const unsigned long SKIFF_CLONE_NEWNET = CLONE_NEWNET;
static const unsigned long SKIFF_CLONE_NEWCGROUP = CLONE_NEWCGROUP;
static const unsigned long SKIFF_CLONE_NEWTIME = 0x00000080UL;
static const unsigned long SKIFF_CLONE_PARENT = CLONE_PARENT;

/* fork-like raw clone: the child returns 0 on the caller's stack copy. */
pid_t skiff_clone_fork(unsigned long flags);
/* clone3 with fork semantics; cgroup_fd >= 0 adds CLONE_INTO_CGROUP (no migration cost). */
pid_t skiff_clone3_fork(uint64_t flags, int cgroup_fd);
int skiff_unshare(int flags);
int skiff_setns(int fd, int nstype);
int skiff_pivot_root(const char *new_root, const char *put_old);
int skiff_pipe2(int fds[2], int flags);
int skiff_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int skiff_close_range(unsigned int first, unsigned int last, unsigned int flags);
/* The filesystem magic of fd's filesystem (statfs f_type), or -1. */
long skiff_fs_type(int fd);
int skiff_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int skiff_pidfd_open(pid_t pid, unsigned int flags);
int skiff_pidfd_send_signal(int pidfd, int sig);
/* A copy of another process's fd (Linux 5.6; needs ptrace access to it). */
int skiff_pidfd_getfd(int pidfd, int targetfd);
pid_t skiff_gettid(void);
/* The git commit of the build: -DSKIFF_COMMIT="..." from setup.sh, else "unknown". */
const char *skiff_build_commit(void);
int skiff_setresuid(uid_t r, uid_t e, uid_t s);
int skiff_setresgid(gid_t r, gid_t e, gid_t s);
int skiff_getresuid(uid_t *r, uid_t *e, uid_t *s);
int skiff_getresgid(gid_t *r, gid_t *e, gid_t *s);
dev_t skiff_makedev(unsigned int major, unsigned int minor);
unsigned int skiff_major(dev_t dev);
unsigned int skiff_minor(dev_t dev);

/* bpf(2) for cgroup v2 device programs: load a BPF_PROG_TYPE_CGROUP_DEVICE program from raw
 * 8-byte instructions, attach it to a cgroup directory fd (BPF_F_ALLOW_MULTI), query/detach. */
int skiff_bpf_load_device_prog(const void *insns, unsigned int count, char *log, unsigned int log_size);
int skiff_bpf_attach_device_prog(int cgroup_fd, int prog_fd);

/* epoll with plain arguments (struct epoll_event is packed on x86_64). skiff_epoll_wait unpacks
 * up to max events into parallel arrays. */
int skiff_epoll_create(void);
int skiff_epoll_ctl(int epfd, int op, int fd, uint32_t events);
int skiff_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms);
static const uint32_t SKIFF_EPOLLIN = 0x001, SKIFF_EPOLLOUT = 0x004, SKIFF_EPOLLERR = 0x008, SKIFF_EPOLLHUP = 0x010,
    SKIFF_EPOLLRDHUP = 0x2000;
static const int SKIFF_EPOLL_CTL_ADD = 1, SKIFF_EPOLL_CTL_DEL = 2, SKIFF_EPOLL_CTL_MOD = 3;
/* Blocks SIGCHLD and returns a non-blocking, close-on-exec signalfd for it. */
/* Blocks the signals and returns a non-blocking signalfd for them; _read returns one signo or -1. */
int skiff_signalfd_for(const int *sigs, int n);
int skiff_signalfd_read(int fd);
int skiff_accept(int fd);
int skiff_lsetxattr(const char *path, const char *name, const void *value, size_t size);
int skiff_release_and_wait(int epfd, const unsigned long *addrs, const unsigned long *lens, int n);

/* ioctl and fcntl are variadic in C. */
int skiff_ioctl_int(int fd, unsigned long req, int *arg);
int skiff_ioctl_ptr(int fd, unsigned long req, void *arg);
int skiff_set_ctty(int fd);
int skiff_set_winsize(int fd, unsigned short rows, unsigned short cols);
int skiff_get_winsize(int fd, unsigned short *rows, unsigned short *cols);
int skiff_pty_unlock(int masterfd);
int skiff_pty_number(int masterfd, unsigned int *n);
/* TIOCGPTPEER: the slave of a pty master, opened without a path lookup. */
int skiff_pty_peer(int masterfd, int flags);
int skiff_fcntl_setfd(int fd, int flags);
int skiff_fcntl_getfd(int fd);
int skiff_fcntl_dupfd(int fd, int min);
int skiff_fcntl_getfl(int fd);
int skiff_fcntl_setfl(int fd, int flags);
/* F_SETPIPE_SZ: the pipe's capacity (rounded up by the kernel); returns it, or -1. */
int skiff_set_pipe_size(int fd, int size);

/* SCM_RIGHTS: CMSG_* are macros. Sends exactly one fd in one cmsg with a data payload (>= 1 byte). */
int skiff_send_fd(int sock, int fd, const void *data, size_t len);
/* Receives one fd; returns the fd or -1. data receives up to cap bytes; *len is set. */
int skiff_recv_fd(int sock, void *data, size_t cap, size_t *len);

/* The new mount API (Linux 5.2) and sealed memfds, for ExeGuard's protected re-exec. */
int skiff_fsopen(const char *fstype);
int skiff_fsconfig_string(int fsfd, const char *key, const char *value);
int skiff_fsconfig_create(int fsfd);
int skiff_fsmount(int fsfd, unsigned int attrs);
int skiff_memfd_create(const char *name);
int skiff_add_seals(int fd, int seals);
int skiff_get_seals(int fd);
long skiff_sendfile(int out, int in, size_t count);
static const unsigned int SKIFF_MOUNT_ATTR_RDONLY = 0x1, SKIFF_MOUNT_ATTR_NOSUID = 0x2, SKIFF_MOUNT_ATTR_NODEV = 0x4;
static const int SKIFF_F_SEAL_SEAL = 0x1, SKIFF_F_SEAL_SHRINK = 0x2, SKIFF_F_SEAL_GROW = 0x4, SKIFF_F_SEAL_WRITE = 0x8;

/* The fd-based mount API: open_tree/move_mount (Linux 5.2), mount_setattr (5.12). Mounts are made
 * on descriptors resolved once, so no path is resolved twice. */
int skiff_open_tree(int dirfd, const char *path, unsigned int flags);
int skiff_move_mount(int from_fd, const char *from_path, int to_fd, const char *to_path, unsigned int flags);
int skiff_mount_setattr(int fd, const char *path, unsigned int flags, uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, int userns_fd);
int skiff_fsconfig_flag(int fsfd, const char *key);
static const unsigned int SKIFF_OPEN_TREE_CLONE = 1, SKIFF_AT_RECURSIVE = 0x8000, SKIFF_AT_EMPTY_PATH = 0x1000,
    SKIFF_AT_SYMLINK_NOFOLLOW = 0x100, SKIFF_MOVE_MOUNT_F_EMPTY_PATH = 0x4, SKIFF_MOVE_MOUNT_T_EMPTY_PATH = 0x40;
static const uint64_t SKIFF_MOUNT_ATTR_NOEXEC = 0x8, SKIFF_MOUNT_ATTR__ATIME = 0x70, SKIFF_MOUNT_ATTR_RELATIME = 0,
    SKIFF_MOUNT_ATTR_NOATIME = 0x10, SKIFF_MOUNT_ATTR_STRICTATIME = 0x20, SKIFF_MOUNT_ATTR_NODIRATIME = 0x80,
    SKIFF_MOUNT_ATTR_IDMAP = 0x100000, SKIFF_MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

/* Constants that arrive as macros. */
static const unsigned long SKIFF_MS_RDONLY = 1, SKIFF_MS_NOSUID = 2, SKIFF_MS_NODEV = 4, SKIFF_MS_NOEXEC = 8,
    SKIFF_MS_SYNCHRONOUS = 16, SKIFF_MS_REMOUNT = 32, SKIFF_MS_MANDLOCK = 64, SKIFF_MS_DIRSYNC = 128,
    SKIFF_MS_NOSYMFOLLOW = 256, SKIFF_MS_NOATIME = 1024, SKIFF_MS_NODIRATIME = 2048, SKIFF_MS_BIND = 4096,
    SKIFF_MS_MOVE = 8192, SKIFF_MS_REC = 16384, SKIFF_MS_SILENT = 32768, SKIFF_MS_UNBINDABLE = (1 << 17),
    SKIFF_MS_PRIVATE = (1 << 18), SKIFF_MS_SLAVE = (1 << 19), SKIFF_MS_SHARED = (1 << 20),
    SKIFF_MS_RELATIME = (1 << 21), SKIFF_MS_STRICTATIME = (1 << 24), SKIFF_MS_LAZYTIME = (1 << 25);
static const int SKIFF_MNT_DETACH = 2;
static const uint64_t SKIFF_RESOLVE_NO_XDEV = 0x01, SKIFF_RESOLVE_NO_MAGICLINKS = 0x02,
    SKIFF_RESOLVE_NO_SYMLINKS = 0x04, SKIFF_RESOLVE_BENEATH = 0x08, SKIFF_RESOLVE_IN_ROOT = 0x10;
static const int SKIFF_PR_SET_PDEATHSIG = 1, SKIFF_PR_SET_KEEPCAPS = 8, SKIFF_PR_SET_NAME = 15,
    SKIFF_PR_CAPBSET_DROP = 24, SKIFF_PR_SET_NO_NEW_PRIVS = 38, SKIFF_PR_GET_NO_NEW_PRIVS = 39,
    SKIFF_PR_SET_CHILD_SUBREAPER = 36, SKIFF_PR_SET_DUMPABLE = 4, SKIFF_PR_CAP_AMBIENT = 47,
    SKIFF_PR_CAP_AMBIENT_RAISE = 2, SKIFF_PR_CAP_AMBIENT_CLEAR_ALL = 4;
static const unsigned int SKIFF_CLOSE_RANGE_CLOEXEC = (1U << 2);
#endif

/* clone.c: get a process into the container's namespaces and cgroup.
 * See lifecycle.h for the two layouts: P -> I with one clone(CLONE_NEW*)
 * when every namespace is new, and P -> S -> I when some are joined (the
 * pid and time namespaces only apply to children of the process that
 * joins/unshares them).  A new user namespace needs its maps written by a
 * process outside it (P), and the child joins the cgroup itself (see
 * "joining the cgroup" below for why). */
#include "lifecycle.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/single_threaded.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* ---------------- sync socket ---------------- */

int ns_sync_send(int fd, int type, int value, const char *text) {
  struct ns_msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.value = value;
  if (text)
    snprintf(m.text, sizeof m.text, "%s", text);
  size_t len = offsetof(struct ns_msg, text) + (text ? strlen(m.text) + 1 : 0);
  for (;;) {
    ssize_t w = send(fd, &m, len, MSG_NOSIGNAL);
    if (w >= 0)
      return 0;
    if (errno != EINTR)
      return -errno;
  }
}

int ns_sync_recv(int fd, struct ns_msg *m, const char *peer, hv_error_t *err) {
  memset(m, 0, sizeof *m);
  for (;;) {
    ssize_t r = recv(fd, m, sizeof *m, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return hv_error(err, errno, "read from %s", peer);
    if (r == 0)
      return hv_error(err, 0, "%s exited during setup", peer);
    if ((size_t)r < offsetof(struct ns_msg, text))
      return hv_error(err, 0, "short message from %s", peer);
    m->text[sizeof m->text - 1] = 0;
    if (m->type == NS_MSG_ERROR) {
      int r = hv_error(err, 0, "%s", m->text);
      if (err && *err && m->value > 0 && m->value < 256)
        (*err)->status = m->value;
      return r;
    }
    return 0;
  }
}

void ns_child_fail(int fd, hv_error_t *err) {
  char *m = NULL;
  int status = err && *err && (*err)->status ? (*err)->status : 1;
  if (err && *err)
    m = (*err)->errno_ ? hv_xasprintf("%s: %s", (*err)->msg, strerror((*err)->errno_))
                       : hv_xstrdup((*err)->msg);
  /* The status travels with the text (exec: 127 not found, 126 not
   * executable), so hvrun exits with it. */
  if (ns_sync_send(fd, NS_MSG_ERROR, status, m ? m : "container setup failed") < 0)
    fprintf(stderr, "hvrun: %s\n", m ? m : "container setup failed");
  free(m);
  _exit(status);
}

/* ---------------- namespaces ---------------- */

/* setns order: the user namespace first (it grants the capabilities needed
 * for the rest), the mount namespace last (it changes root and cwd, so the
 * /proc paths of the others must be resolved before it). */
static const struct { const char *name; int flag; } ns_order[] = {
    {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
    {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"cgroup", CLONE_NEWCGROUP},
    {"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
};
#define N_NS (sizeof ns_order / sizeof ns_order[0])

static bool same_ns(pid_t pid, const char *name) {
  char a[64], b[64];
  snprintf(a, sizeof a, "/proc/self/ns/%s", name);
  snprintf(b, sizeof b, "/proc/%d/ns/%s", pid, name);
  struct stat sa, sb;
  if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
    return true; /* kernel without it: nothing to join */
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Open (before any setns) the namespaces S must join: by path from the
 * config, or those of join_pid. */
static int open_join_fds(const struct ns_spawn *s, int fds[N_NS], hv_error_t *err) {
  for (size_t i = 0; i < N_NS; i++)
    fds[i] = -1;
  for (size_t i = 0; i < N_NS; i++) {
    cleanup_free char *path = NULL;
    if (s->join_pid > 0) {
      if (same_ns(s->join_pid, ns_order[i].name))
        continue;
      path = hv_xasprintf("/proc/%d/ns/%s", s->join_pid, ns_order[i].name);
    } else if (s->cfg) {
      for (size_t k = 0; k < s->cfg->linux.n_namespaces; k++) {
        const struct hv_oci_namespace *n = &s->cfg->linux.namespaces[k];
        if (n->flag == ns_order[i].flag && n->path && *n->path)
          path = hv_xstrdup(n->path);
      }
    }
    if (!path)
      continue;
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0)
      return hv_error(err, errno, "open namespace `%s`", path);
  }
  return 0;
}

static void close_join_fds(int fds[N_NS]) {
  for (size_t i = 0; i < N_NS; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* Flags of namespaces the config asks to create (no path). */
static int new_ns_flags(const struct hv_oci_config *cfg) {
  int flags = 0;
  for (size_t k = 0; cfg && k < cfg->linux.n_namespaces; k++) {
    const struct hv_oci_namespace *n = &cfg->linux.namespaces[k];
    if (!n->path || !*n->path)
      flags |= n->flag;
  }
  return flags;
}

static int write_time_offsets(const struct hv_oci_config *cfg, hv_error_t *err) {
  if (!cfg->linux.n_time_offsets)
    return 0;
  cleanup_close int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "open /proc/self/timens_offsets");
  for (size_t i = 0; i < cfg->linux.n_time_offsets; i++) {
    const struct hv_oci_keyval *kv = &cfg->linux.time_offsets[i];
    cleanup_free char *line = hv_xasprintf("%s %s\n", kv->key, kv->value);
    if (write(fd, line, strlen(line)) < 0)
      return hv_error(err, errno, "linux.timeOffsets.%s: write `%s`", kv->key, kv->value);
  }
  return 0;
}

static int write_idmap(pid_t pid, const char *file, const struct hv_oci_idmap *m, size_t n,
                       hv_error_t *err) {
  if (!n)
    return 0;
  size_t cap = 64 * n + 1, len = 0;
  cleanup_free char *buf = hv_xmalloc0(cap);
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%u %u %u\n", m[i].container_id, m[i].host_id,
                            m[i].size);
  cleanup_free char *path = hv_xasprintf("/proc/%d/%s", pid, file);
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return hv_error(err, errno, "open `%s`", path);
  if (write(fd, buf, len) < 0)
    return hv_error(err, errno, "write %s (linux.%s)", path,
                    strcmp(file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
  return 0;
}

/* ---------------- joining the cgroup ---------------- */

/* Moving a process into a cgroup by writing its pid to cgroup.procs takes
 * the kernel's global cgroup_threadgroup_rwsem for writing, and that first
 * waits for an RCU grace period: 6-19 ms measured under load, the longest
 * single wait of a container start (crun and runc pay it too).  Two ways
 * in skip that lock, and the child uses them:
 *   v1: a single-threaded process writing "0" to a hierarchy's `tasks`
 *       file moves itself without it (the kernel only locks the thread
 *       group when a pid or a whole group is named): 0.3 ms;
 *   v2: clone3(CLONE_INTO_CGROUP) creates the child in the cgroup.
 * P opens the `tasks` files (its open-time credentials are what the kernel
 * checks, so a child in a new user namespace may use them) and the v2
 * directory before it forks; the child's first act is the move, before
 * anything else runs in it.  If any of this is not possible, P moves the
 * child the old way before releasing it. */
#define MAX_HIERARCHIES 16
struct cg_entry {
  int tasks[MAX_HIERARCHIES];   /* v1 `tasks` files, O_WRONLY */
  size_t n_tasks;
  int v2_dir;                   /* the cgroup2 directory, or -1 */
  bool usable;                  /* false: P writes cgroup.procs */
};

static void cg_entry_close(struct cg_entry *e) {
  for (size_t i = 0; i < e->n_tasks; i++)
    close(e->tasks[i]);
  e->n_tasks = 0;
  if (e->v2_dir >= 0)
    close(e->v2_dir);
  e->v2_dir = -1;
}

/* The directories come from hv_cg_path() ({"dirs":[{"path":...}]}). */
static void cg_entry_prepare(struct hv_cgroup *cg, struct cg_entry *e) {
  e->n_tasks = 0;
  e->v2_dir = -1;
  e->usable = false;
  if (!cg || !__libc_single_threaded)
    return;
  json_error_t je;
  cleanup_json json_t *j = json_loads(hv_cg_path(cg), 0, &je);
  json_t *dirs = json_object_get(j, "dirs");
  if (!json_is_array(dirs) || json_array_size(dirs) == 0 ||
      json_array_size(dirs) > MAX_HIERARCHIES)
    return;
  size_t i;
  json_t *d;
  json_array_foreach(dirs, i, d) {
    const char *path = json_string_value(json_object_get(d, "path"));
    if (!path)
      goto unusable;
    cleanup_free char *tasks = hv_xasprintf("%s/tasks", path);
    int fd = open(tasks, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      e->tasks[e->n_tasks++] = fd;
      continue;
    }
    /* No `tasks`: the cgroup2 hierarchy (only one can exist). */
    if (errno != ENOENT || e->v2_dir >= 0)
      goto unusable;
    e->v2_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e->v2_dir < 0)
      goto unusable;
  }
  e->usable = true;
  return;
unusable:
  cg_entry_close(e);
}

/* In the child, first thing: move ourselves into every v1 hierarchy. */
static int cg_entry_join(struct cg_entry *e, hv_error_t *err) {
  for (size_t i = 0; i < e->n_tasks; i++)
    if (write(e->tasks[i], "0", 1) != 1)
      return hv_error(err, errno, "cgroups: join the container's cgroup");
  cg_entry_close(e);
  return 0;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
struct hv_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

/* fork()/clone(flags) for a single-threaded P; with a cgroup2 dir, the
 * child starts life in it.  Sets *into_v2 when that worked. */
static pid_t clone_child(unsigned long flags, struct cg_entry *e, bool *into_v2) {
  *into_v2 = false;
  if (e->usable && e->v2_dir >= 0) {
    struct hv_clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = flags | CLONE_INTO_CGROUP;
    a.exit_signal = SIGCHLD;
    a.cgroup = (uint64_t)e->v2_dir;
    pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof a);
    if (pid >= 0) {
      *into_v2 = true;
      return pid;
    }
    /* Old kernel, or the cgroup refuses the process (EBUSY ...): the
     * plain way, where the cgroup layer reports what is wrong. */
    cg_entry_close(e);
    e->usable = false;
  }
  if (flags == 0)
    return fork();
  return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0UL);
}

/* P's side after the clone: whatever the child cannot do itself. */
static int cg_entry_finish(struct hv_cgroup *cg, struct cg_entry *e, bool into_v2, pid_t pid,
                           hv_error_t *err) {
  if (!cg)
    return 0;
  bool self = e->usable && (e->v2_dir < 0 || into_v2);
  cg_entry_close(e);
  return self ? 0 : hv_cg_enter(cg, pid, err);
}

/* Runs in I, in its namespaces: join the cgroup (or find that P or
 * clone3 did), wait until P has written our uid/gid maps and learn our pid
 * as P sees it, then run the caller's code.  Never returns. */
__attribute__((noreturn)) static void child_start(struct ns_spawn *s, int fd, bool new_user,
                                                  int unshare_later, struct cg_entry *e) {
  hv_error_t err = NULL;
  struct ns_msg m;
  if (e && cg_entry_join(e, &err) < 0)
    ns_child_fail(fd, &err);
  if (ns_sync_recv(fd, &m, "hvrun", &err) < 0)
    _exit(1);
  pid_t host_pid = m.value;
  if (new_user && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
    hv_error(&err, errno, "become root in the user namespace (is uid/gid 0 mapped?)");
    ns_child_fail(fd, &err);
  }
  /* A cgroup namespace is rooted at the cgroup of the process that makes
   * it, so it is made only now that we are in the container's cgroup. */
  if (unshare_later && unshare(unshare_later) < 0) {
    hv_error(&err, errno, "create cgroup namespace");
    ns_child_fail(fd, &err);
  }
  _exit(s->child_main(s->arg, fd, host_pid));
}

/* The stage process S (namespaces joined by path, exec, time namespace).
 * Never returns. */
__attribute__((noreturn)) static void stage_main(struct ns_spawn *s, int fd, struct cg_entry *e) {
  hv_error_t err = NULL;
  struct ns_msg m;
  /* If P dies before the handshake, S must not linger. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1)
    _exit(1);
  if (cg_entry_join(e, &err) < 0)
    ns_child_fail(fd, &err);
  if (ns_sync_recv(fd, &m, "hvrun", &err) < 0)
    _exit(1);

  if (s->before_join && s->before_join(s->arg, &err) < 0)
    ns_child_fail(fd, &err);
  int fds[N_NS];
  if (open_join_fds(s, fds, &err) < 0)
    ns_child_fail(fd, &err);
  for (size_t i = 0; i < N_NS; i++) {
    if (fds[i] < 0)
      continue;
    if (setns(fds[i], ns_order[i].flag) < 0) {
      hv_error(&err, errno, "join %s namespace", ns_order[i].name);
      ns_child_fail(fd, &err);
    }
  }
  close_join_fds(fds);

  int flags = s->join_pid > 0 ? 0 : new_ns_flags(s->cfg);
  if (flags & CLONE_NEWUSER) {
    if (unshare(CLONE_NEWUSER) < 0) {
      hv_error(&err, errno, "create user namespace");
      ns_child_fail(fd, &err);
    }
    /* Only P, outside the namespace, may write our maps. */
    if (ns_sync_send(fd, NS_MSG_USERMAP, 0, NULL) < 0 || ns_sync_recv(fd, &m, "hvrun", &err) < 0)
      ns_child_fail(fd, &err);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
      hv_error(&err, errno, "become root in the user namespace (is uid/gid 0 mapped?)");
      ns_child_fail(fd, &err);
    }
  }
  int rest = flags & ~CLONE_NEWUSER;
  if (rest && unshare(rest) < 0) {
    hv_error(&err, errno, "create namespaces (flags %#x)", rest);
    ns_child_fail(fd, &err);
  }
  if ((rest & CLONE_NEWTIME) && write_time_offsets(s->cfg, &err) < 0)
    ns_child_fail(fd, &err);

  pid_t pid = fork();
  if (pid < 0) {
    hv_error(&err, errno, "fork container process");
    ns_child_fail(fd, &err);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, 0);
    /* P sends I its pid (NS_MSG_PID) once S has reported it. */
    child_start(s, fd, false, 0, NULL);
  }
  ns_sync_send(fd, NS_MSG_PID, pid, NULL);
  _exit(0);
}

/* Can I be made with one clone() straight from P?  Not when a namespace
 * is joined (setns must precede the fork that puts a child in the pid
 * namespace) nor for a time namespace (its offsets must be written before
 * any process is in it, and clone() has no flag for it). */
static bool can_clone_directly(const struct ns_spawn *s) {
  /* A raw clone() skips what glibc's fork() does for a multi-threaded
   * process (taking malloc's and stdio's locks around the fork); with a
   * thread running (the terminal relay of `run`) the child could inherit
   * a held lock and hang.  fork() it is, then. */
  if (!__libc_single_threaded)
    return false;
  if (s->join_pid > 0 || !s->cfg)
    return false;
  for (size_t k = 0; k < s->cfg->linux.n_namespaces; k++) {
    const struct hv_oci_namespace *n = &s->cfg->linux.namespaces[k];
    if ((n->path && *n->path) || n->flag == CLONE_NEWTIME)
      return false;
  }
  return true;
}

static int write_maps(const struct ns_spawn *s, pid_t pid, hv_error_t *err) {
  /* gid_map first is not required as root; setgroups stays allowed. */
  if (write_idmap(pid, "uid_map", s->cfg->linux.uid_mappings, s->cfg->linux.n_uid_mappings,
                  err) < 0 ||
      write_idmap(pid, "gid_map", s->cfg->linux.gid_mappings, s->cfg->linux.n_gid_mappings,
                  err) < 0)
    return -1;
  return 0;
}

/* The common case (create/run with only new namespaces), as crun does it:
 * ONE clone() into every new namespace, then P moves the child into the
 * cgroup, writes its id maps and releases it with a single message that
 * also carries its pid.  No stage process, one wake-up. */
static int spawn_direct(struct ns_spawn *s, int sv[2], hv_error_t *err) {
  int flags = new_ns_flags(s->cfg);
  int later = flags & CLONE_NEWCGROUP;
  flags &= ~CLONE_NEWCGROUP;
  struct cg_entry e;
  cg_entry_prepare(s->cg, &e);
  bool into_v2;
  pid_t pid = clone_child((unsigned long)flags, &e, &into_v2);
  if (pid < 0) {
    int er = errno;
    cg_entry_close(&e);
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, er, "create the container's namespaces (clone flags %#x)", flags);
  }
  if (pid == 0) {
    close(sv[0]);
    child_start(s, sv[1], flags & CLONE_NEWUSER, later, &e);
  }
  close(sv[1]);
  int fd = sv[0];
  if (cg_entry_finish(s->cg, &e, into_v2, pid, err) < 0 ||
      ((flags & CLONE_NEWUSER) && write_maps(s, pid, err) < 0))
    goto fail;
  if (ns_sync_send(fd, NS_MSG_GO, pid, NULL) < 0) {
    hv_error(err, errno, "start container setup");
    goto fail;
  }
  s->pid = pid;
  s->sync_fd = fd;
  return 0;
fail:
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  close(fd);
  return -1;
}

int ns_spawn(struct ns_spawn *s, hv_error_t *err) {
  int sv[2];
  s->pid = 0;
  s->sync_fd = -1;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return hv_error(err, errno, "socketpair");
  /* Orphans of the stage (the container's first process) come back to us. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  }
  fflush(NULL);
  if (can_clone_directly(s))
    return spawn_direct(s, sv, err);
  struct cg_entry e;
  cg_entry_prepare(s->cg, &e);
  bool into_v2;
  pid_t stage = clone_child(0, &e, &into_v2);
  if (stage < 0) {
    int er = errno;
    cg_entry_close(&e);
    close(sv[0]);
    close(sv[1]);
    return hv_error(err, er, "fork");
  }
  if (stage == 0) {
    close(sv[0]);
    stage_main(s, sv[1], &e);
  }
  close(sv[1]);
  int fd = sv[0];
  struct ns_msg m;
  int rc = 0;
  if (cg_entry_finish(s->cg, &e, into_v2, stage, err) < 0) {
    rc = -1;
    goto fail;
  }
  if (ns_sync_send(fd, NS_MSG_GO, 0, NULL) < 0) {
    rc = hv_error(err, errno, "start container setup");
    goto fail;
  }
  for (;;) {
    if (ns_sync_recv(fd, &m, "container setup", err) < 0) {
      rc = -1;
      goto fail;
    }
    if (m.type == NS_MSG_USERMAP) {
      if (write_maps(s, stage, err) < 0) {
        rc = -1;
        goto fail;
      }
      ns_sync_send(fd, NS_MSG_ACK, 0, NULL);
    } else if (m.type == NS_MSG_PID) {
      s->pid = m.value;
      break;
    }
  }
  int st;
  while (waitpid(stage, &st, 0) < 0 && errno == EINTR)
    ;
  /* I waits for its pid (as we see it) before it does anything. */
  if (ns_sync_send(fd, NS_MSG_PID, s->pid, NULL) < 0) {
    rc = hv_error(err, errno, "container process exited during setup");
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(fd);
    return rc;
  }
  s->sync_fd = fd;
  return 0;
fail:
  kill(stage, SIGKILL);
  while (waitpid(stage, NULL, 0) < 0 && errno == EINTR)
    ;
  close(fd);
  return rc;
}

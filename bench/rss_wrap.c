/* rss_wrap: run argv, print "<ru_maxrss KiB> <exit status>" to the fd
 * named by $RSS_FD.
 * A Python benchmark cannot measure a child's peak RSS directly: a forked
 * child's high-water mark includes the interpreter's pages from before the
 * exec.  This small process forks from a small image instead. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  pid_t pid = fork();
  if (pid < 0)
    return 2;
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0)
    return 2;
  const char *fd = getenv("RSS_FD");
  dprintf(fd ? atoi(fd) : 2, "%ld %d\n", ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 0;
}

/*
 * Loaded with LD_PRELOAD into a `pigeonhole serve` under test: while the file named by
 * FAIL_FSYNC_WHILE_EXISTS exists, fsync() and fdatasync() of any SQLite write-ahead
 * log (a file whose name ends in "-wal") fail with EIO, as a failing disk's would.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd) {
  const char *flag = getenv("FAIL_FSYNC_WHILE_EXISTS");
  if (flag == NULL || access(flag, F_OK) != 0) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 4) return 0;
  path[n] = 0;
  return strcmp(path + n - 4, "-wal") == 0;
}

/* The call `name` makes, unless the flag says to fail it. */
static int passOrFail(const char *name, int fd) {
  if (failing(fd)) {
    errno = EIO;
    return -1;
  }
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
  return real(fd);
}

int fsync(int fd) { return passOrFail("fsync", fd); }

int fdatasync(int fd) { return passOrFail("fdatasync", fd); }

/* Helpers shared by the C test programs: counting what the process holds, from /proc. */
#ifndef SIOADAPTER_TEST_PROC_H
#define SIOADAPTER_TEST_PROC_H

#include <dirent.h>

/* Entries of `dir` (e.g. /proc/self/task: the threads; /proc/self/fd: the open fds, the
 * directory stream's own fd included, before and after alike), or -1. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n;
}

#endif

/* Helpers shared by the C test programs that print one TAP-like line per check. */
#ifndef SIOADAPTER_TEST_CHECK_H
#define SIOADAPTER_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int checks = 0;
static int failures = 0;

/* Prints "ok N - <what>" or "not ok N - <what>" and counts a failure. */
static inline void check(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s %d - ", ok ? "ok" : "not ok", ++checks);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  if (!ok) failures++;
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

#endif

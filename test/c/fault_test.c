/* The C adapter handle under a stalled Redis (issue 11), driven by test/c-api.test.js over
 * stdin/stdout. Usage: fault_test REDIS_URL KEY TIMEOUT_MS SLACK_MS
 *
 * Every asynchronous call gets its own slot as user_data; its completion counts its runs, so a
 * completion that runs twice, never, too late or after sio_adapter_free returned is seen. Lines
 * (-> printed, <- read from stdin):
 *
 *   -> READY <uid>                         handle A (requestsTimeout TIMEOUT_MS) is subscribed
 *   <- STALLED                             the test SIGSTOPped Redis
 *   -> STALL_REQ <name> <result> <ms> <runs>   fetch_sockets, all_rooms, server_count,
 *                                              server_side_emit with ack, issued during the stall
 *   -> ERROR_EVENT <ms after STALLED> | NO_ERROR_EVENT
 *   -> STALL_DONE
 *   <- RESUMED                             the test SIGCONTed Redis
 *   -> READY_AGAIN <ms after RESUMED> | NO_READY_AGAIN
 *   -> AFTER_REQ <name> <result> <ms> <runs> <json>   the same four requests, answered by the Node node
 *   -> RECOVERED
 *   <- STALLED                             stalled again
 *   -> FREE_REQ <name> <result> <ms> <runs>   requests in flight when sio_adapter_free was called
 *                                             (four with TIMEOUT_MS, four fetch_sockets with 30 s)
 *   -> FREED <ms sio_adapter_free took>
 *   <- RESUMED
 *   -> B_READY                             handle B (requestsTimeout 30 s) on the healthy Redis
 *   -> B_SENT                              four server_side_emit with ack that nobody acks
 *   <- FREE
 *   -> B_FREE_REQ <name> <result> <ms> <runs>
 *   -> B_FREED <ms>
 *   -> RESOURCES threads <before> <after A> <after B> fds <before> <after A> <after B>
 *   -> FD_LEFT_BY_FIRST_HANDLE <fd> <target> / FD_LEFT_BY_SECOND_HANDLE ...   fds opened since
 *      (with FD_LEFT_..._IS lines saying which socket it is)
 *   -> DONE <failures>
 *
 * Every check that fails prints "not ok - ..." and counts in the exit status (1 if any). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sioadapter.h"
#include "test_proc.h"

#define LONG_TIMEOUT_MS 30000u

static long timeout_ms;
static long slack_ms;
static int failures = 0;

static atomic_int ready_events = 0;
static atomic_int error_events = 0;
static atomic_llong first_error_ns = 0;
/* The first SIO_EVENT_READY after an SIO_EVENT_ERROR, per outage (reset by the main thread). */
static atomic_llong ready_after_error_ns = 0;
static atomic_int freed = 0;          /* set once sio_adapter_free returned: no callback may run then */
static atomic_int after_free_calls = 0;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long ms_since(long long start_ns, long long end_ns) { return (long)((end_ns - start_ns) / 1000000LL); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void fail(const char *what, const char *detail) {
  failures++;
  printf("not ok - %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  fflush(stdout);
}

static void say(const char *line) {
  printf("%s\n", line);
  fflush(stdout);
}

/* Reads one line from stdin and checks it is `expected`. */
static int expect_line(const char *expected) {
  char line[64];
  if (!fgets(line, sizeof line, stdin)) {
    fail("stdin closed, waiting for", expected);
    return 0;
  }
  line[strcspn(line, "\r\n")] = '\0';
  if (strcmp(line, expected) != 0) {
    fail("unexpected line on stdin", line);
    return 0;
  }
  return 1;
}

/* What each open fd points to ("3 socket:[1234]"), into `out` (up to 64 entries). */
typedef char fd_entry[160];
static int list_fds(fd_entry *out, int max) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    if (e->d_name[0] == '.') continue;
    char link[300], target[128];
    snprintf(link, sizeof link, "/proc/self/fd/%.255s", e->d_name);
    ssize_t len = readlink(link, target, sizeof target - 1);
    target[len < 0 ? 0 : len] = '\0';
    snprintf(out[n++], sizeof out[0], "%.16s %.127s", e->d_name, target);
  }
  closedir(d);
  return n;
}

/* Prints "<prefix> <fd> <target>" for each fd of `after` that `before` did not have, and for a
 * socket its line in /proc/self/net/{tcp,tcp6,unix} ("<prefix>_IS ..."). Returns how many such fds
 * there are; `*not_unix` gets how many of them are not Unix sockets. */
static int print_new_fds(const char *prefix, fd_entry *before, int nb, fd_entry *after, int na, int *not_unix) {
  int fresh = 0;
  *not_unix = 0;
  for (int i = 0; i < na; i++) {
    int known = 0;
    for (int j = 0; j < nb && !known; j++) known = strcmp(after[i], before[j]) == 0;
    if (known) continue;
    fresh++;
    printf("%s %s\n", prefix, after[i]);
    int is_unix = 0;
    const char *inode = strstr(after[i], "socket:[");
    if (inode) {
      char number[32];
      snprintf(number, sizeof number, " %.*s", (int)strcspn(inode + 8, "]"), inode + 8);
      static const char *tables[] = {"/proc/self/net/tcp", "/proc/self/net/tcp6", "/proc/self/net/unix"};
      for (int t = 0; t < 3; t++) {
        FILE *f = fopen(tables[t], "r");
        if (!f) continue;
        char row[512];
        while (fgets(row, sizeof row, f)) {
          const char *at = strstr(row, number);
          if (at && (at[strlen(number)] == ' ' || at[strlen(number)] == '\n')) {
            printf("%s_IS %s %s", prefix, tables[t], row);
            is_unix |= t == 2;
          }
        }
        fclose(f);
      }
    }
    *not_unix += !is_unix;
  }
  fflush(stdout);
  return fresh;
}

/* ---------------------------------------------------------------------------------------------- */
/* Completion slots */

typedef struct slot {
  const char *name;
  long long started_ns;
  atomic_int runs;
  atomic_int done;  /* set after the first run recorded its result */
  int result;
  long long finished_ns;
  char json[2048];
} slot;

static void on_done(void *user_data, sio_result result, const char *json, const char *error) {
  slot *s = user_data;
  long long t = now_ns();
  if (atomic_load(&freed)) atomic_fetch_add(&after_free_calls, 1);
  if (atomic_fetch_add(&s->runs, 1) != 0) return; /* a second run: counted, reported by the checks */
  s->result = (int)result;
  s->finished_ns = t;
  const char *text = json ? json : (error ? error : "");
  snprintf(s->json, sizeof s->json, "%s", text);
  for (char *p = s->json; *p; p++) {
    if (*p == '\n' || *p == '\r') *p = ' ';
  }
  atomic_store(&s->done, 1);
}

static void start(slot *s, const char *name) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->started_ns = now_ns();
}

static long elapsed(const slot *s) { return ms_since(s->started_ns, s->finished_ns); }

/* Waits until every slot completed or `within_ms` passed. */
static void wait_all(slot *slots, int n, long within_ms) {
  long long deadline = now_ns() + within_ms * 1000000LL;
  for (;;) {
    int pending = 0;
    for (int i = 0; i < n; i++) pending += !atomic_load(&slots[i].done);
    if (pending == 0 || now_ns() > deadline) return;
    sleep_ms(5);
  }
}

static void print_slot(const char *prefix, const slot *s, int with_json) {
  int runs = atomic_load(&s->runs);
  if (!atomic_load(&s->done)) {
    printf("%s %s NEVER -1 %d\n", prefix, s->name, runs);
  } else if (with_json) {
    printf("%s %s %s %ld %d %s\n", prefix, s->name, sio_result_name((sio_result)s->result), elapsed(s), runs, s->json);
  } else {
    printf("%s %s %s %ld %d\n", prefix, s->name, sio_result_name((sio_result)s->result), elapsed(s), runs);
  }
  fflush(stdout);
}

/* Exactly one run, already done. */
static int ran_once(const char *phase, const slot *s) {
  char detail[256];
  int runs = atomic_load(&s->runs);
  if (runs != 1) {
    snprintf(detail, sizeof detail, "%s: %s completion ran %d times", phase, s->name, runs);
    fail("every completion runs exactly once", detail);
    return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Host callbacks */

static const char *SOCKETS_JSON =
    "[{\"id\":\"c-sock-1\",\"handshake\":{\"headers\":{},\"time\":\"\",\"address\":\"c-host\",\"xdomain\":false,"
    "\"secure\":false,\"issued\":0,\"url\":\"/\",\"query\":{},\"auth\":{}},\"rooms\":[\"c-sock-1\"],\"data\":{}}]";

/* The handle in use (A, then B), for answering requests. */
static _Atomic(sio_adapter *) current = NULL;

static void on_request(void *user_data, const sio_request *request) {
  (void)user_data;
  if (atomic_load(&freed)) atomic_fetch_add(&after_free_calls, 1);
  sio_adapter *adapter = atomic_load(&current);
  if (adapter == NULL || request->request_id == NULL) return;
  const char *answer = NULL;
  switch (request->kind) {
    case SIO_REQUEST_KIND_ALL_ROOMS: answer = "[\"c-sock-1\"]"; break;
    case SIO_REQUEST_KIND_REMOTE_FETCH: answer = SOCKETS_JSON; break;
    case SIO_REQUEST_KIND_SERVER_SIDE_EMIT: answer = "\"pong-from-c\""; break; /* with ack */
    default: return;
  }
  sio_adapter_respond(adapter, request->kind, request->request_id, request->requester, answer);
}

static void on_broadcast(void *user_data, const uint8_t *message, size_t len) {
  (void)user_data, (void)message, (void)len;
  if (atomic_load(&freed)) atomic_fetch_add(&after_free_calls, 1);
}

static void on_event(void *user_data, sio_event event, const char *message) {
  (void)user_data;
  if (atomic_load(&freed)) atomic_fetch_add(&after_free_calls, 1);
  long long t = now_ns();
  if (event == SIO_EVENT_READY) {
    atomic_fetch_add(&ready_events, 1);
    long long expected = 0;
    if (atomic_load(&error_events) > 0) atomic_compare_exchange_strong(&ready_after_error_ns, &expected, t);
  } else {
    atomic_fetch_add(&error_events, 1);
    long long expected = 0;
    atomic_compare_exchange_strong(&first_error_ns, &expected, t);
    fprintf(stderr, "adapter error event: %s\n", message ? message : "(null)");
  }
}

static int wait_flag(atomic_int *flag, int above, long within_ms) {
  long long deadline = now_ns() + within_ms * 1000000LL;
  while (atomic_load(flag) <= above && now_ns() < deadline) sleep_ms(5);
  return atomic_load(flag) > above;
}

/* Issues fetch_sockets, all_rooms, server_count and server_side_emit with ack into slots[0..3]. */
static void four_requests(sio_adapter *a, slot *slots) {
  start(&slots[0], "fetch_sockets");
  sio_adapter_fetch_sockets(a, NULL, 0, on_done, &slots[0]);
  start(&slots[1], "all_rooms");
  sio_adapter_all_rooms(a, on_done, &slots[1]);
  start(&slots[2], "server_count");
  sio_adapter_server_count(a, on_done, &slots[2]);
  start(&slots[3], "server_side_emit_ack");
  sio_adapter_server_side_emit(a, "ping-from-c", "[1]", on_done, &slots[3]);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s REDIS_URL KEY TIMEOUT_MS SLACK_MS\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  const char *key = argv[2];
  timeout_ms = atol(argv[3]);
  slack_ms = atol(argv[4]);
  char detail[4096];

  int threads_before = count_entries("/proc/self/task");
  static fd_entry fd_list_before[64], fd_list_mid[64], fd_list_after[64];
  int fd_count_before = list_fds(fd_list_before, 64), fd_count_mid = 0;
  int threads_mid = 0;

  /* ---- Handle A, healthy Redis ---- */
  sio_host_callbacks callbacks = {NULL, on_broadcast, on_request, on_event};
  sio_adapter *a = NULL;
  if (sio_adapter_new(url, key, "/", (uint32_t)timeout_ms, &callbacks, &a) != SIO_OK) {
    fprintf(stderr, "sio_adapter_new: %s\n", sio_last_error());
    return 1;
  }
  atomic_store(&current, a);
  sio_adapter_room_created(a, "c-sock-1");
  if (!wait_flag(&ready_events, 0, 10000)) {
    fail("handle A never ready", NULL);
    return 1;
  }
  printf("READY %s\n", sio_adapter_uid(a));
  fflush(stdout);

  /* ---- Phase 1: requests while Redis is stalled ---- */
  if (!expect_line("STALLED")) return 1;
  long long stalled_ns = now_ns();
  int errors_before = atomic_load(&error_events);
  atomic_store(&first_error_ns, 0);
  atomic_store(&ready_after_error_ns, 0);
  slot stall[4];
  four_requests(a, stall);
  wait_all(stall, 4, timeout_ms + slack_ms + 5000);
  sleep_ms(300); /* a second run would come now */
  for (int i = 0; i < 4; i++) {
    print_slot("STALL_REQ", &stall[i], 0);
    if (!atomic_load(&stall[i].done)) {
      snprintf(detail, sizeof detail, "%s never completed within %ld ms", stall[i].name, timeout_ms + slack_ms + 5000);
      fail("a request settles within requestsTimeout during a stall", detail);
      continue;
    }
    ran_once("stall", &stall[i]);
    if (elapsed(&stall[i]) > timeout_ms + slack_ms) {
      snprintf(detail, sizeof detail, "%s took %ld ms (requestsTimeout %ld + %ld)", stall[i].name, elapsed(&stall[i]), timeout_ms, slack_ms);
      fail("a request settles within requestsTimeout during a stall", detail);
    }
    if (stall[i].result == SIO_OK) {
      snprintf(detail, sizeof detail, "%s: SIO_OK %s", stall[i].name, stall[i].json);
      fail("a request during a stall does not succeed", detail);
    }
  }
  /* The supervisor probes every second while up (skipping a turn when messages flowed both ways
   * since the last one) and waits 2 s for the PONGs: an error within about 4 s of the stall. */
  if (wait_flag(&error_events, errors_before, 3000 + slack_ms + 3000)) {
    printf("ERROR_EVENT %ld\n", ms_since(stalled_ns, atomic_load(&first_error_ns)));
  } else {
    say("NO_ERROR_EVENT");
    fail("SIO_EVENT_ERROR during a stall", NULL);
  }
  fflush(stdout);
  say("STALL_DONE");

  /* ---- Phase 2: Redis answers again ---- */
  if (!expect_line("RESUMED")) return 1;
  long long resumed_ns = now_ns();
  long long deadline = resumed_ns + (1000 + slack_ms + 5000) * 1000000LL;
  while (atomic_load(&ready_after_error_ns) == 0 && now_ns() < deadline) sleep_ms(5);
  long long ready_ns = atomic_load(&ready_after_error_ns);
  if (ready_ns == 0) {
    say("NO_READY_AGAIN");
    fail("SIO_EVENT_READY after the stall", NULL);
  } else {
    long ms = ms_since(resumed_ns, ready_ns);
    printf("READY_AGAIN %ld\n", ms);
    fflush(stdout);
    /* Long before the test said RESUMED (just after SIGCONT): a ready while Redis was stopped. */
    if (ms < -500 || ms > 1000 + slack_ms) {
      snprintf(detail, sizeof detail, "ready %ld ms after Redis answers again (target 1000 + %ld)", ms, slack_ms);
      fail("SIO_EVENT_READY soon after Redis answers again", detail);
    }
  }
  slot after[4];
  four_requests(a, after);
  wait_all(after, 4, timeout_ms + slack_ms + 5000);
  sleep_ms(300);
  for (int i = 0; i < 4; i++) {
    print_slot("AFTER_REQ", &after[i], 1);
    if (!atomic_load(&after[i].done)) {
      snprintf(detail, sizeof detail, "%s never completed", after[i].name);
      fail("requests succeed after the stall", detail);
      continue;
    }
    ran_once("after", &after[i]);
    if (after[i].result != SIO_OK) {
      snprintf(detail, sizeof detail, "%s: %s %s", after[i].name, sio_result_name((sio_result)after[i].result), after[i].json);
      fail("requests succeed after the stall", detail);
    }
  }
  say("RECOVERED");

  /* ---- Phase 3: sio_adapter_free while requests are in flight on a stalled Redis ---- */
  if (!expect_line("STALLED")) return 1;
  slot inflight[8];
  four_requests(a, inflight);
  static const char *long_names[4] = {"fetch_sockets_30s_1", "fetch_sockets_30s_2", "fetch_sockets_30s_3", "fetch_sockets_30s_4"};
  for (int i = 0; i < 4; i++) {
    start(&inflight[4 + i], long_names[i]);
    sio_adapter_fetch_sockets(a, NULL, LONG_TIMEOUT_MS, on_done, &inflight[4 + i]);
  }
  sleep_ms(100); /* let every request reach Redis (PUBSUB NUMSUB, unanswered) */
  long long free_start = now_ns();
  sio_adapter_free(a);
  long long free_end = now_ns();
  atomic_store(&freed, 1);
  atomic_store(&current, NULL);
  threads_mid = count_entries("/proc/self/task");
  fd_count_mid = list_fds(fd_list_mid, 64);
  /* Late runs (a use after free, as far as the caller knows) would come now. */
  int done_at_return[8];
  for (int i = 0; i < 8; i++) done_at_return[i] = atomic_load(&inflight[i].done);
  sleep_ms(1000);
  for (int i = 0; i < 8; i++) {
    print_slot("FREE_REQ", &inflight[i], 0);
    if (!done_at_return[i]) {
      snprintf(detail, sizeof detail, "%s had not completed when sio_adapter_free returned (runs now: %d)", inflight[i].name, atomic_load(&inflight[i].runs));
      fail("every completion runs before sio_adapter_free returns", detail);
      continue;
    }
    ran_once("free", &inflight[i]);
    int r = inflight[i].result;
    int long_request = i >= 4;
    /* A long request can only end by the close; the others may have timed out first. */
    int acceptable = r == SIO_ERR_CLOSED || (!long_request && (r == SIO_ERR_TIMEOUT || r == SIO_ERR_REDIS) && elapsed(&inflight[i]) >= timeout_ms - 50);
    if (!acceptable) {
      snprintf(detail, sizeof detail, "%s: %s after %ld ms (%s)", inflight[i].name, sio_result_name((sio_result)r), elapsed(&inflight[i]), inflight[i].json);
      fail("requests in flight end with SIO_ERR_CLOSED at sio_adapter_free", detail);
    }
  }
  printf("FREED %ld\n", ms_since(free_start, free_end));
  fflush(stdout);

  /* ---- Phase 4: sio_adapter_free while requests wait for answers on a healthy Redis ---- */
  if (!expect_line("RESUMED")) return 1;
  atomic_store(&freed, 0);
  int ready_before_b = atomic_load(&ready_events);
  sio_adapter *b = NULL;
  if (sio_adapter_new(url, key, "/", LONG_TIMEOUT_MS, &callbacks, &b) != SIO_OK) {
    fprintf(stderr, "sio_adapter_new (B): %s\n", sio_last_error());
    return 1;
  }
  atomic_store(&current, b);
  if (!wait_flag(&ready_events, ready_before_b, 10000)) {
    fail("handle B never ready", NULL);
    return 1;
  }
  say("B_READY");
  slot waiting[4];
  static const char *waiting_names[4] = {"never_acked_1", "never_acked_2", "never_acked_3", "never_acked_4"};
  for (int i = 0; i < 4; i++) {
    start(&waiting[i], waiting_names[i]);
    sio_adapter_server_side_emit(b, "never-acked", "[]", on_done, &waiting[i]);
  }
  say("B_SENT");
  if (!expect_line("FREE")) return 1;
  free_start = now_ns();
  sio_adapter_free(b);
  free_end = now_ns();
  atomic_store(&freed, 1);
  atomic_store(&current, NULL);
  for (int i = 0; i < 4; i++) done_at_return[i] = atomic_load(&waiting[i].done);
  sleep_ms(500);
  for (int i = 0; i < 4; i++) {
    print_slot("B_FREE_REQ", &waiting[i], 1);
    if (!done_at_return[i]) {
      snprintf(detail, sizeof detail, "%s had not completed when sio_adapter_free returned", waiting[i].name);
      fail("every completion runs before sio_adapter_free returns", detail);
      continue;
    }
    ran_once("free B", &waiting[i]);
    if (waiting[i].result != SIO_ERR_CLOSED) {
      snprintf(detail, sizeof detail, "%s: %s %s", waiting[i].name, sio_result_name((sio_result)waiting[i].result), waiting[i].json);
      fail("requests waiting for answers end with SIO_ERR_CLOSED at sio_adapter_free", detail);
    }
  }
  printf("B_FREED %ld\n", ms_since(free_start, free_end));

  int late = atomic_load(&after_free_calls);
  if (late != 0) {
    snprintf(detail, sizeof detail, "%d callbacks ran after sio_adapter_free returned", late);
    fail("no callback after sio_adapter_free", detail);
  }
  /* Nothing a handle owns outlives it: its threads are gone, and neither A (the first runtime of
   * the process, freed on a Redis that had stalled) nor B (freed on a healthy Redis) leaves a
   * file descriptor open. */
  int threads_after = count_entries("/proc/self/task");
  int fd_count_after = list_fds(fd_list_after, 64), not_unix = 0;
  printf("RESOURCES threads %d %d %d fds %d %d %d\n", threads_before, threads_mid, threads_after, fd_count_before, fd_count_mid, fd_count_after);
  fflush(stdout);
  if (threads_mid != threads_before || threads_after != threads_before) fail("the handle's threads end with sio_adapter_free", NULL);
  int left_by_a = print_new_fds("FD_LEFT_BY_FIRST_HANDLE", fd_list_before, fd_count_before, fd_list_mid, fd_count_mid, &not_unix);
  if (left_by_a > 0 || fd_count_mid != fd_count_before) {
    snprintf(detail, sizeof detail, "handle A left %d fds open, %d of them not Unix sockets (%d before it, %d after)", left_by_a, not_unix, fd_count_before, fd_count_mid);
    fail("nothing the handle owns outlives it (fds)", detail);
  }
  int left_by_b = print_new_fds("FD_LEFT_BY_SECOND_HANDLE", fd_list_mid, fd_count_mid, fd_list_after, fd_count_after, &not_unix);
  if (left_by_b > 0 || fd_count_after != fd_count_mid) {
    snprintf(detail, sizeof detail, "handle B left %d fds open (%d before it, %d after)", left_by_b, fd_count_mid, fd_count_after);
    fail("nothing the handle owns outlives it (fds)", detail);
  }
  printf("DONE %d\n", failures);
  fflush(stdout);
  return failures == 0 ? 0 : 1;
}

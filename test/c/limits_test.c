/* The limits of the C API (sio_limits, sio_adapter_new_with_limits, sio_emitter_new_with_limits,
 * sio_adapter_stats, SIO_ERR_TOO_LARGE, SIO_EVENT_DROPPED), against the shared Redis with a unique
 * key. Usage: limits_test REDIS_URL KEY. test/c-api.test.js compiles and runs it (under valgrind
 * when installed).
 *
 * L: an adapter with max_message_bytes 2048, max_message_values 100, max_message_depth 8.
 * D: an adapter made with NULL limits (the defaults). E: an emitter with a zeroed sio_limits (the
 * defaults). All on KEY, namespace "/".
 *  1. E emits a 5000-byte string, a 150-element array, an array nested 20 deep, a small message:
 *     L's on_broadcast sees only the small one, D's all four in order; L reports SIO_EVENT_DROPPED
 *     "ERR_SIO_TOO_LARGE: dropped 1 too large message..." and ONE "ERR_SIO_TOO_COMPLEX: dropped 1
 *     too complex message..." (at most one report per second per kind); sio_adapter_stats of L:
 *     too_large 1, too_complex 2, malformed 0, delivered >= 1; of D: no drop, delivered >= 4.
 *  2. More than a second later, another deep one: "ERR_SIO_TOO_COMPLEX: dropped 2 too complex
 *     messages" (the unreported one and this one); too_complex 3.
 *  3. sio_adapter_broadcast of a 5000-byte argument from L: SIO_ERR_TOO_LARGE (sio_result_name says
 *     so), counted in too_large, not published (D does not get it, a small one after it arrives);
 *     the same from D (defaults): published, and L drops it ("dropped 1 too large message").
 *  4. An emitter with max_message_bytes 100 refuses a 200-byte emit with SIO_ERR_TOO_LARGE and
 *     sends a small one (D gets it).
 *  5. max_message_depth 5000: SIO_ERR_INVALID from both *_new_with_limits (nothing returned);
 *     1024 is accepted.
 *  6. An emitter with max_queued_bytes 20000 on an unreachable URL: 3 emits of 5 KB are queued,
 *     the next ones return SIO_ERR_OVERLOADED.
 * One "ok N - ..." / "not ok N - ..." line per check, then "DONE <failures>"; exit 1 on failure. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sioadapter.h"
#include "test_check.h"

#define MAX_SEEN 32
#define MAX_TEXT 512

/* What one adapter's callbacks saw (they run on the handle's thread; main reads under the lock). */
typedef struct host {
  const char *label;
  pthread_mutex_t lock;
  int ready;
  int errors;
  int broadcasts;
  char names[MAX_SEEN][64]; /* event name of each broadcast, in order */
  int dropped;
  char drops[MAX_SEEN][MAX_TEXT]; /* SIO_EVENT_DROPPED messages, in order */
} host;

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* The event name of a broadcast: msgpack [uid, {..., "data": [event, ...], ...}, opts]; the first
 * "data" key is the packet's (the uid and the map keys before it are short strings). Empty when
 * not found. */
static void event_name(const uint8_t *m, size_t len, char *out, size_t out_len) {
  out[0] = '\0';
  for (size_t i = 0; i + 5 < len; i++) {
    if (m[i] != 0xa4 || memcmp(m + i + 1, "data", 4) != 0) continue;
    size_t p = i + 5;
    if (p < len && m[p] >= 0x90 && m[p] <= 0x9f) p += 1;
    else if (p < len && m[p] == 0xdc) p += 3;
    else if (p < len && m[p] == 0xdd) p += 5;
    else return;
    size_t n;
    if (p < len && m[p] >= 0xa0 && m[p] <= 0xbf) {
      n = m[p] & 0x1f;
      p += 1;
    } else if (p + 1 < len && m[p] == 0xd9) {
      n = m[p + 1];
      p += 2;
    } else {
      return;
    }
    if (p + n > len || n >= out_len) return;
    memcpy(out, m + p, n);
    out[n] = '\0';
    return;
  }
}

static void on_broadcast(void *user_data, const uint8_t *message, size_t len) {
  host *h = user_data;
  char name[64];
  event_name(message, len, name, sizeof name);
  pthread_mutex_lock(&h->lock);
  if (h->broadcasts < MAX_SEEN) snprintf(h->names[h->broadcasts], sizeof h->names[0], "%s", name);
  h->broadcasts++;
  pthread_mutex_unlock(&h->lock);
}

static void on_request(void *user_data, const sio_request *request) {
  (void)user_data;
  (void)request;
}

static void on_event(void *user_data, sio_event event, const char *message) {
  host *h = user_data;
  pthread_mutex_lock(&h->lock);
  if (event == SIO_EVENT_READY) {
    h->ready = 1;
  } else if (event == SIO_EVENT_ERROR) {
    h->errors++;
    printf("# %s: SIO_EVENT_ERROR %s\n", h->label, message ? message : "(null)");
  } else if (event == SIO_EVENT_DROPPED) {
    if (h->dropped < MAX_SEEN) snprintf(h->drops[h->dropped], MAX_TEXT, "%s", message ? message : "(null)");
    h->dropped++;
  }
  pthread_mutex_unlock(&h->lock);
}

/* Reads an int field of `h` under its lock. */
static int get(host *h, const int *field) {
  pthread_mutex_lock(&h->lock);
  int v = *field;
  pthread_mutex_unlock(&h->lock);
  return v;
}

/* Waits until *field of `h` reaches `at_least`, at most timeout_ms; returns whether it did. */
static int wait_for(host *h, const int *field, int at_least, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms; waited += 10) {
    if (get(h, field) >= at_least) return 1;
    sleep_ms(10);
  }
  return get(h, field) >= at_least;
}

/* Whether `h` saw a broadcast named `name`. */
static int saw(host *h, const char *name) {
  int found = 0;
  pthread_mutex_lock(&h->lock);
  for (int i = 0; i < h->broadcasts && i < MAX_SEEN; i++) found |= strcmp(h->names[i], name) == 0;
  pthread_mutex_unlock(&h->lock);
  return found;
}

/* Waits until `h` saw a broadcast named `name`, at most timeout_ms; returns whether it did. */
static int wait_saw(host *h, const char *name, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms && !saw(h, name); waited += 10) sleep_ms(10);
  return saw(h, name);
}

static void print_stats(const char *label, const sio_stats *s) {
  printf("# %s stats: published %llu delivered %llu malformed %llu too_large %llu too_complex %llu skipped %llu pending_requests %llu "
         "redis_published %llu redis_dropped %llu redis_pending %llu redis_pending_bytes %llu\n",
         label, (unsigned long long)s->published, (unsigned long long)s->delivered, (unsigned long long)s->malformed,
         (unsigned long long)s->too_large, (unsigned long long)s->too_complex, (unsigned long long)s->skipped,
         (unsigned long long)s->pending_requests, (unsigned long long)s->redis_published, (unsigned long long)s->redis_dropped,
         (unsigned long long)s->redis_pending, (unsigned long long)s->redis_pending_bytes);
}

/* `["<n characters>"]` (malloc'd). */
static char *string_arg(size_t n, char c) {
  char *s = malloc(n + 5);
  s[0] = '[';
  s[1] = '"';
  memset(s + 2, c, n);
  strcpy(s + 2 + n, "\"]");
  return s;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s REDIS_URL KEY\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  const char *key = argv[2];
  const long WAIT = 30000; /* generous: valgrind runs everything slower */

  static host hl = {.label = "L"};
  static host hd = {.label = "D"};
  static host hx = {.label = "X"}; /* the short-lived adapters of step 5 */
  pthread_mutex_init(&hl.lock, NULL);
  pthread_mutex_init(&hd.lock, NULL);
  pthread_mutex_init(&hx.lock, NULL);
  sio_host_callbacks cl = {&hl, on_broadcast, on_request, on_event};
  sio_host_callbacks cd = {&hd, on_broadcast, on_request, on_event};

  sio_limits small = {.max_message_bytes = 2048, .max_message_values = 100, .max_message_depth = 8};
  sio_limits zero;
  memset(&zero, 0, sizeof zero);

  sio_adapter *L = NULL;
  sio_adapter *D = NULL;
  sio_emitter *E = NULL;
  sio_result rc = sio_adapter_new_with_limits(url, key, "/", 2000, &small, &cl, &L);
  check(rc == SIO_OK && L != NULL, "sio_adapter_new_with_limits (2048 bytes, 100 values, depth 8): %s %s", sio_result_name(rc), sio_last_error());
  rc = sio_adapter_new_with_limits(url, key, "/", 2000, NULL, &cd, &D);
  check(rc == SIO_OK && D != NULL, "sio_adapter_new_with_limits with NULL limits: %s %s", sio_result_name(rc), sio_last_error());
  rc = sio_emitter_new_with_limits(url, key, "/", &zero, &E);
  check(rc == SIO_OK && E != NULL, "sio_emitter_new_with_limits with a zeroed sio_limits: %s %s", sio_result_name(rc), sio_last_error());
  if (!L || !D || !E) {
    printf("DONE %d\n", failures);
    return 1;
  }
  check(wait_for(&hl, &hl.ready, 1, WAIT) && wait_for(&hd, &hd.ready, 1, WAIT), "L and D ready");

  /* 1. Received messages over L's limits. */
  char *big = string_arg(5000, 'x');
  char many[1024];
  size_t at = 0;
  at += (size_t)snprintf(many + at, sizeof many - at, "[[");
  for (int i = 0; i < 150; i++) at += (size_t)snprintf(many + at, sizeof many - at, "%s%d", i ? "," : "", i);
  snprintf(many + at, sizeof many - at, "]]");
  char deep[64];
  at = 0;
  deep[at++] = '[';
  for (int i = 0; i < 20; i++) deep[at++] = '[';
  deep[at++] = '1';
  for (int i = 0; i < 20; i++) deep[at++] = ']';
  deep[at++] = ']';
  deep[at] = '\0';

  sio_result r1 = sio_emitter_emit(E, "ev-big", big, NULL);
  sio_result r2 = sio_emitter_emit(E, "ev-many", many, NULL);
  sio_result r3 = sio_emitter_emit(E, "ev-deep", deep, NULL);
  sio_result r4 = sio_emitter_emit(E, "ev-small", "[\"hi\"]", NULL);
  check(r1 == SIO_OK && r2 == SIO_OK && r3 == SIO_OK && r4 == SIO_OK, "the default emitter emits all four: %s %s %s %s", sio_result_name(r1),
        sio_result_name(r2), sio_result_name(r3), sio_result_name(r4));
  int waited_ok = wait_for(&hd, &hd.broadcasts, 4, WAIT);
  check(waited_ok, "D (defaults) gets 4 broadcasts (got %d)", get(&hd, &hd.broadcasts));
  waited_ok = wait_for(&hl, &hl.broadcasts, 1, WAIT);
  check(waited_ok, "L gets a broadcast (got %d)", get(&hl, &hl.broadcasts));
  wait_for(&hl, &hl.dropped, 2, 5000);
  sleep_ms(200); /* anything else would have come by now (same connection, in order) */
  pthread_mutex_lock(&hd.lock);
  int d_order = hd.broadcasts == 4 && !strcmp(hd.names[0], "ev-big") && !strcmp(hd.names[1], "ev-many") && !strcmp(hd.names[2], "ev-deep") &&
                !strcmp(hd.names[3], "ev-small");
  check(d_order, "D's on_broadcast: ev-big, ev-many, ev-deep, ev-small (got %d: %s %s %s %s)", hd.broadcasts, hd.names[0], hd.names[1], hd.names[2],
        hd.names[3]);
  pthread_mutex_unlock(&hd.lock);
  pthread_mutex_lock(&hl.lock);
  check(hl.broadcasts == 1 && !strcmp(hl.names[0], "ev-small"), "L's on_broadcast sees only ev-small (got %d, first %s)", hl.broadcasts, hl.names[0]);
  int large_reports = 0;
  int complex_reports = 0;
  int other_reports = 0;
  for (int i = 0; i < hl.dropped && i < MAX_SEEN; i++) {
    printf("# L: SIO_EVENT_DROPPED %s\n", hl.drops[i]);
    if (starts_with(hl.drops[i], "ERR_SIO_TOO_LARGE: dropped 1 too large message: ")) large_reports++;
    else if (starts_with(hl.drops[i], "ERR_SIO_TOO_COMPLEX: dropped 1 too complex message: ")) complex_reports++;
    else other_reports++;
  }
  check(hl.dropped == 2 && large_reports == 1 && complex_reports == 1 && other_reports == 0,
        "L: SIO_EVENT_DROPPED \"ERR_SIO_TOO_LARGE: dropped 1 too large message: ...\" and one \"ERR_SIO_TOO_COMPLEX: dropped 1 too complex message: ...\" "
        "(got %d events)",
        hl.dropped);
  pthread_mutex_unlock(&hl.lock);

  sio_stats sl;
  sio_stats sd;
  memset(&sl, 0xff, sizeof sl);
  rc = sio_adapter_stats(L, &sl);
  print_stats("L", &sl);
  check(rc == SIO_OK && sl.too_large == 1 && sl.too_complex == 2 && sl.malformed == 0 && sl.delivered >= 1,
        "sio_adapter_stats(L): too_large 1, too_complex 2, malformed 0, delivered >= 1 (%s: %llu %llu %llu %llu)", sio_result_name(rc),
        (unsigned long long)sl.too_large, (unsigned long long)sl.too_complex, (unsigned long long)sl.malformed, (unsigned long long)sl.delivered);
  memset(&sd, 0xff, sizeof sd);
  rc = sio_adapter_stats(D, &sd);
  print_stats("D", &sd);
  check(rc == SIO_OK && sd.too_large == 0 && sd.too_complex == 0 && sd.malformed == 0 && sd.delivered >= 4,
        "sio_adapter_stats(D): no drop, delivered >= 4 (%s: %llu %llu %llu %llu)", sio_result_name(rc), (unsigned long long)sd.too_large,
        (unsigned long long)sd.too_complex, (unsigned long long)sd.malformed, (unsigned long long)sd.delivered);
  check(sio_adapter_stats(NULL, &sl) == SIO_ERR_NULL && sio_adapter_stats(L, NULL) == SIO_ERR_NULL, "sio_adapter_stats with NULL: SIO_ERR_NULL");

  /* 2. More than a second after the first report: the pending one is reported with the next. */
  sleep_ms(1200);
  r1 = sio_emitter_emit(E, "ev-deep-2", deep, NULL);
  r2 = sio_emitter_emit(E, "ev-small-2", "[\"hi\"]", NULL);
  check(r1 == SIO_OK && r2 == SIO_OK, "emit ev-deep-2, ev-small-2: %s %s", sio_result_name(r1), sio_result_name(r2));
  check(wait_for(&hl, &hl.broadcasts, 2, WAIT) && wait_for(&hl, &hl.dropped, 3, 5000), "L gets ev-small-2 and a third SIO_EVENT_DROPPED");
  pthread_mutex_lock(&hl.lock);
  if (hl.dropped >= 3) printf("# L: SIO_EVENT_DROPPED %s\n", hl.drops[2]);
  check(hl.broadcasts == 2 && !strcmp(hl.names[1], "ev-small-2"), "L's second broadcast is ev-small-2 (got %d, %s)", hl.broadcasts, hl.names[1]);
  check(hl.dropped == 3 && starts_with(hl.drops[2], "ERR_SIO_TOO_COMPLEX: dropped 2 too complex messages: "),
        "L: \"ERR_SIO_TOO_COMPLEX: dropped 2 too complex messages: ...\" (got %d events, last: %s)", hl.dropped, hl.dropped >= 3 ? hl.drops[2] : "-");
  pthread_mutex_unlock(&hl.lock);
  sio_adapter_stats(L, &sl);
  check(sl.too_complex == 3 && sl.too_large == 1, "sio_adapter_stats(L): too_complex 3, too_large 1 (%llu %llu)", (unsigned long long)sl.too_complex,
        (unsigned long long)sl.too_large);

  /* 3. Own too large broadcasts. */
  sio_stats before;
  sio_adapter_stats(L, &before);
  rc = sio_adapter_broadcast(L, "from-L-big", big, NULL);
  const char *err = sio_last_error();
  check(rc == SIO_ERR_TOO_LARGE, "sio_adapter_broadcast(L) of a 5000-byte argument: %s (%s)", sio_result_name(rc), err);
  check(strcmp(sio_result_name(rc), "SIO_ERR_TOO_LARGE") == 0 && strcmp(sio_result_name(SIO_ERR_TOO_LARGE), "SIO_ERR_TOO_LARGE") == 0,
        "sio_result_name says SIO_ERR_TOO_LARGE");
  rc = sio_adapter_broadcast(L, "from-L-small", "[1]", NULL);
  check(rc == SIO_OK, "sio_adapter_broadcast(L) of a small one: %s %s", sio_result_name(rc), sio_last_error());
  /* Published on one connection in order: once from-L-small is there, from-L-big would be too. */
  check(wait_saw(&hd, "from-L-small", WAIT) && !saw(&hd, "from-L-big"), "D gets from-L-small, not from-L-big");
  sio_adapter_stats(L, &sl);
  check(sl.too_large == before.too_large + 1 && sl.published == before.published + 1,
        "sio_adapter_stats(L): the refused broadcast counted in too_large (%llu -> %llu), not published (%llu -> %llu)",
        (unsigned long long)before.too_large, (unsigned long long)sl.too_large, (unsigned long long)before.published, (unsigned long long)sl.published);

  int l_before = get(&hl, &hl.broadcasts);
  int l_drops_before = get(&hl, &hl.dropped);
  r1 = sio_adapter_broadcast(D, "from-D-big", big, NULL);
  r2 = sio_adapter_broadcast(D, "from-D-small", "[2]", NULL);
  check(r1 == SIO_OK && r2 == SIO_OK, "sio_adapter_broadcast(D, defaults) of 5000 bytes and of a small one: %s %s", sio_result_name(r1), sio_result_name(r2));
  check(wait_for(&hl, &hl.broadcasts, l_before + 1, WAIT) && wait_for(&hl, &hl.dropped, l_drops_before + 1, 5000), "L gets from-D-small and reports a drop");
  sleep_ms(100);
  pthread_mutex_lock(&hl.lock);
  check(hl.broadcasts == l_before + 1 && !strcmp(hl.names[l_before], "from-D-small"), "L got only from-D-small (%d broadcasts, last %s)", hl.broadcasts,
        hl.names[hl.broadcasts - 1]);
  check(hl.dropped == l_drops_before + 1 && starts_with(hl.drops[l_drops_before], "ERR_SIO_TOO_LARGE: dropped 1 too large message: "),
        "L: \"ERR_SIO_TOO_LARGE: dropped 1 too large message: ...\" for D's (last: %s)", hl.dropped > l_drops_before ? hl.drops[hl.dropped - 1] : "-");
  pthread_mutex_unlock(&hl.lock);
  sio_adapter_stats(L, &sl);
  check(sl.too_large == before.too_large + 2, "sio_adapter_stats(L): too_large %llu", (unsigned long long)sl.too_large);

  /* 4. An emitter with max_message_bytes 100. */
  sio_limits tiny = {.max_message_bytes = 100};
  sio_emitter *E100 = NULL;
  rc = sio_emitter_new_with_limits(url, key, "/", &tiny, &E100);
  check(rc == SIO_OK && E100, "sio_emitter_new_with_limits (max_message_bytes 100): %s %s", sio_result_name(rc), sio_last_error());
  if (E100) {
    char *two_hundred = string_arg(200, 't');
    rc = sio_emitter_emit(E100, "tiny-big", two_hundred, NULL);
    check(rc == SIO_ERR_TOO_LARGE, "the 100-byte emitter refuses a 200-byte emit: %s (%s)", sio_result_name(rc), sio_last_error());
    free(two_hundred);
    rc = sio_emitter_emit(E100, "tiny", "[1]", NULL);
    check(rc == SIO_OK, "the 100-byte emitter sends a small one: %s %s", sio_result_name(rc), sio_last_error());
    rc = sio_emitter_flush(E100, 10000);
    check(rc == SIO_OK, "the 100-byte emitter flushes: %s", sio_result_name(rc));
    check(wait_saw(&hd, "tiny", WAIT) && !saw(&hd, "tiny-big"), "D gets tiny, not tiny-big");
    sio_emitter_free(E100);
  }

  /* 5. max_message_depth above 1024. */
  sio_limits too_deep = {.max_message_depth = 5000};
  sio_adapter *bad_adapter = NULL;
  sio_emitter *bad_emitter = NULL;
  sio_host_callbacks cn = {&hx, on_broadcast, on_request, on_event};
  rc = sio_adapter_new_with_limits(url, key, "/", 0, &too_deep, &cn, &bad_adapter);
  err = sio_last_error();
  check(rc == SIO_ERR_INVALID && bad_adapter == NULL && (strstr(err, "epth") || strstr(err, "EPTH")),
        "sio_adapter_new_with_limits with max_message_depth 5000: %s, no handle, error names the depth (%s)", sio_result_name(rc), err);
  rc = sio_emitter_new_with_limits(url, key, "/", &too_deep, &bad_emitter);
  err = sio_last_error();
  check(rc == SIO_ERR_INVALID && bad_emitter == NULL && (strstr(err, "epth") || strstr(err, "EPTH")),
        "sio_emitter_new_with_limits with max_message_depth 5000: %s, no handle (%s)", sio_result_name(rc), err);
  sio_limits deepest = {.max_message_depth = 1024};
  rc = sio_emitter_new_with_limits(url, key, "/", &deepest, &bad_emitter);
  check(rc == SIO_OK && bad_emitter, "sio_emitter_new_with_limits with max_message_depth 1024: %s %s", sio_result_name(rc), sio_last_error());
  sio_emitter_free(bad_emitter);
  rc = sio_adapter_new_with_limits(url, key, "/", 0, &deepest, &cn, &bad_adapter);
  check(rc == SIO_OK && bad_adapter, "sio_adapter_new_with_limits with max_message_depth 1024: %s %s", sio_result_name(rc), sio_last_error());
  sio_adapter_free(bad_adapter);

  /* 6. The publish queue in bytes, Redis unreachable. */
  sio_limits queue = {.max_queued_bytes = 20000};
  sio_emitter *U = NULL;
  rc = sio_emitter_new_with_limits("redis://127.0.0.1:1", key, "/", &queue, &U);
  check(rc == SIO_OK && U, "sio_emitter_new_with_limits on an unreachable URL (max_queued_bytes 20000): %s %s", sio_result_name(rc), sio_last_error());
  if (U) {
    char *five_k = string_arg(5000, 'q');
    sio_result results[8];
    char line[256];
    size_t used = 0;
    for (int i = 0; i < 8; i++) {
      results[i] = sio_emitter_emit(U, "queued", five_k, NULL);
      used += (size_t)snprintf(line + used, sizeof line - used, " %s", sio_result_name(results[i]));
    }
    int first_refused = 8;
    for (int i = 0; i < 8; i++) {
      if (results[i] != SIO_OK) {
        first_refused = i;
        break;
      }
    }
    int rest_overloaded = 1;
    for (int i = first_refused; i < 8; i++) rest_overloaded &= results[i] == SIO_ERR_OVERLOADED;
    check(first_refused == 3 && rest_overloaded, "5 KB emits while Redis is unreachable: 3 queued, then SIO_ERR_OVERLOADED:%s", line);
    free(five_k);
    sio_emitter_free(U);
  }

  free(big);
  sio_emitter_free(E);
  sio_adapter_free(L);
  sio_adapter_free(D);
  check(hl.errors == 0 && hd.errors == 0, "no SIO_EVENT_ERROR on L or D (%d, %d)", hl.errors, hd.errors);
  pthread_mutex_destroy(&hl.lock);
  pthread_mutex_destroy(&hd.lock);
  pthread_mutex_destroy(&hx.lock);
  printf("DONE %d of %d checks failed\n", failures, checks);
  return failures ? 1 : 0;
}

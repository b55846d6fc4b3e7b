/* The receive buffer of a C adapter handle (sio_limits.max_receive_buffer_bytes, sio_stats.dropped),
 * against the shared Redis with a unique key. Usage: receive_test REDIS_URL KEY.
 * test/c-api.test.js compiles and runs it (under valgrind when installed).
 *
 * The callbacks run on the handle's callback thread while its runtime keeps reading Redis; a slow
 * callback makes received messages wait in a buffer bounded in bytes.
 *  1. S (namespace /small, max_receive_buffer_bytes 32768): its on_broadcast blocks BLOCK_S_MS on
 *     "block"; an emitter sends "block", 200 broadcasts "m" of about 1 KB ([index, text]), then
 *     "after". Every one of the 202 is either delivered or counted in sio_stats.dropped (exactly
 *     202 in all, none twice); some were dropped (200 KB do not fit in 32 KiB); the delivered "m"
 *     keep their order; one SIO_EVENT_DROPPED says "ERR_SIO_OVERLOADED ... dropped N"; no
 *     SIO_EVENT_ERROR; "after" arrives (nothing is dropped once the callback keeps up).
 *  2. B (namespace /big, default limits, 256 MiB): its on_broadcast blocks BLOCK_B_MS on "block"; an
 *     emitter sends "block", BIG_COUNT broadcasts of 1 MiB of binary (48 MiB: more than Redis's
 *     default pub/sub output limit of 32 MiB, at which it disconnects a subscriber that does not
 *     read), then "after". B gets all BIG_COUNT + 2 in order, each 1 MiB argument intact,
 *     sio_stats.dropped 0, no SIO_EVENT_ERROR (its connection was never cut) and no drop report.
 *  3. While S's callback blocks, a server_count completion of S waits its turn: it runs after
 *     the blocking callback returned, on the callback thread (completions and callbacks one at a
 *     time).
 * One "ok N - ..." / "not ok N - ..." line per check, then "DONE <failures> of <checks> checks
 * failed"; exit 1 on failure. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sioadapter.h"
#include "test_check.h"

#define BLOCK_S_MS 2000
#define BLOCK_B_MS 4000
#define SMALL_COUNT 200
#define BIG_COUNT 48
#define BIG_BYTES (1024 * 1024)
#define MAX_TEXT 512

/* What one adapter's callbacks saw (they run on the handle's callback thread; main reads under
 * the lock). */
typedef struct host {
  const char *label;
  long block_ms;
  pthread_mutex_t lock;
  int ready;
  int errors;
  /* SIO_EVENT_ERROR other than a PING answered late: the connection itself was lost or cut.
   * Under valgrind, which runs the threads one at a time, a PONG can wait past the probe's 2 s
   * behind 48 MiB being parsed; that is reported, and is not what B's check is about. */
  int cuts;
  int broadcasts;     /* all broadcasts */
  int blocks;         /* "block" broadcasts */
  int afters;         /* "after" broadcasts */
  int ms;             /* "m" broadcasts */
  long last_index;    /* index of the last "m" (-1: none yet) */
  int out_of_order;   /* an "m" whose index was not above the previous one */
  int bad_payloads;   /* a big broadcast whose binary argument was not BIG_BYTES of 0xAB */
  int drop_reports;   /* SIO_EVENT_DROPPED */
  char drop_text[MAX_TEXT];
  pthread_t thread;   /* the thread the callbacks ran on */
  int threads_differ; /* a callback ran on another thread than the first one */
  int in_block;       /* set while on_broadcast blocks */
  long block_ended_ns;
} host;

/* Reads a msgpack string or bin header at m[*p]; returns its length and moves *p to its bytes,
 * or returns -1. */
static long str_or_bin(const uint8_t *m, size_t len, size_t *p) {
  if (*p >= len) return -1;
  uint8_t t = m[*p];
  size_t n, skip;
  if ((t & 0xe0) == 0xa0) n = t & 0x1f, skip = 1;
  else if ((t == 0xd9 || t == 0xc4) && *p + 1 < len) n = m[*p + 1], skip = 2;
  else if ((t == 0xda || t == 0xc5) && *p + 2 < len) n = (size_t)m[*p + 1] << 8 | m[*p + 2], skip = 3;
  else if ((t == 0xdb || t == 0xc6) && *p + 4 < len) n = (size_t)m[*p + 1] << 24 | (size_t)m[*p + 2] << 16 | (size_t)m[*p + 3] << 8 | m[*p + 4], skip = 5;
  else return -1;
  if (*p + skip + n > len) return -1;
  *p += skip;
  return (long)n;
}

/* Finds the packet's "data" array in a broadcast `[uid, packet, opts]` and reads its event name
 * (into `name`) and its first argument: an integer (into *index) or a string/bin (its length
 * into *blob_len, its first byte into *blob_byte). Good enough for what this test sends. */
static void read_broadcast(const uint8_t *m, size_t len, char *name, size_t name_len, long *index, long *blob_len, int *blob_byte) {
  name[0] = '\0';
  *index = -1;
  *blob_len = -1;
  *blob_byte = -1;
  for (size_t i = 0; i + 5 < len; i++) {
    if (memcmp(m + i, "\xa4" "data", 5) != 0) continue;
    size_t p = i + 5;
    if (p >= len || (m[p] & 0xf0) != 0x90) return;
    p++;
    long n = str_or_bin(m, len, &p);
    if (n < 0) return;
    size_t copy = (size_t)n < name_len - 1 ? (size_t)n : name_len - 1;
    memcpy(name, m + p, copy);
    name[copy] = '\0';
    p += (size_t)n;
    if (p >= len) return;
    uint8_t t = m[p];
    if (t <= 0x7f) *index = t;
    else if (t == 0xcc && p + 1 < len) *index = m[p + 1];
    else if (t == 0xcd && p + 2 < len) *index = m[p + 1] << 8 | m[p + 2];
    else {
      long b = str_or_bin(m, len, &p);
      if (b >= 0) {
        *blob_len = b;
        *blob_byte = b > 0 ? m[p] : -1;
        if (b > 0 && (m[p + b - 1] != m[p] || m[p + b / 2] != m[p])) *blob_byte = -2;
      }
    }
    return;
  }
}

static void on_broadcast(void *user_data, const uint8_t *message, size_t len) {
  host *h = user_data;
  char name[64];
  long index, blob_len;
  int blob_byte;
  read_broadcast(message, len, name, sizeof name, &index, &blob_len, &blob_byte);
  pthread_mutex_lock(&h->lock);
  if (h->broadcasts == 0) h->thread = pthread_self();
  else if (!pthread_equal(h->thread, pthread_self())) h->threads_differ++;
  h->broadcasts++;
  int block = strcmp(name, "block") == 0;
  if (block) {
    h->blocks++;
    h->in_block = 1;
  } else if (strcmp(name, "after") == 0) {
    h->afters++;
  } else if (strcmp(name, "m") == 0) {
    if (index <= h->last_index) h->out_of_order++;
    h->last_index = index;
    h->ms++;
  } else if (strcmp(name, "big") == 0) {
    if (blob_len != BIG_BYTES || blob_byte != 0xab) h->bad_payloads++;
    h->ms++;
  }
  pthread_mutex_unlock(&h->lock);
  if (block) {
    sleep_ms(h->block_ms); /* a slow host: Redis keeps being read meanwhile */
    pthread_mutex_lock(&h->lock);
    h->in_block = 0;
    h->block_ended_ns = now_ns();
    pthread_mutex_unlock(&h->lock);
  }
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
    if (message == NULL || strstr(message, "did not answer a PING") == NULL) h->cuts++;
    printf("# %s: SIO_EVENT_ERROR %s\n", h->label, message ? message : "(null)");
  } else if (event == SIO_EVENT_DROPPED) {
    if (h->drop_reports == 0) snprintf(h->drop_text, MAX_TEXT, "%s", message ? message : "(null)");
    h->drop_reports++;
    printf("# %s: SIO_EVENT_DROPPED %s\n", h->label, message ? message : "(null)");
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

static unsigned long long dropped(sio_adapter *a) {
  sio_stats s;
  memset(&s, 0, sizeof s);
  if (sio_adapter_stats(a, &s) != SIO_OK) return ~0ULL;
  return s.dropped;
}

/* Waits until `h` saw `at_least` broadcasts plus `a`'s drops, at most timeout_ms. */
static int wait_accounted(host *h, sio_adapter *a, int at_least, long timeout_ms) {
  for (long waited = 0; waited < timeout_ms; waited += 10) {
    if (get(h, &h->broadcasts) + (long long)dropped(a) >= at_least) return 1;
    sleep_ms(10);
  }
  return get(h, &h->broadcasts) + (long long)dropped(a) >= at_least;
}

/* A completion: records that it ran, when, on which thread and whether a callback blocked. */
typedef struct count_done {
  host *h;
  atomic_int runs;
  int result;
  long ran_ns;
  int during_block;
  pthread_t thread;
} count_done;

static void on_count(void *user_data, sio_result result, const char *json, const char *error) {
  (void)json;
  (void)error;
  count_done *c = user_data;
  pthread_mutex_lock(&c->h->lock);
  c->during_block = c->h->in_block;
  pthread_mutex_unlock(&c->h->lock);
  c->result = result;
  c->ran_ns = now_ns();
  c->thread = pthread_self();
  atomic_fetch_add(&c->runs, 1);
}

static sio_adapter *start(const char *url, const char *key, const char *nsp, const sio_limits *limits, host *h, sio_host_callbacks *cb) {
  sio_adapter *a = NULL;
  sio_result r = sio_adapter_new_with_limits(url, key, nsp, 5000, limits, cb, &a);
  check(r == SIO_OK && a != NULL, "%s: sio_adapter_new_with_limits (%s)", h->label, r == SIO_OK ? "ok" : sio_last_error());
  for (int i = 0; i < 3000 && !get(h, &h->ready); i++) sleep_ms(10);
  check(get(h, &h->ready), "%s: ready", h->label);
  return a;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s REDIS_URL KEY\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  const char *key = argv[2];
  const long WAIT = 60000; /* generous: valgrind runs everything slower */

  static host hs = {.label = "S", .block_ms = BLOCK_S_MS, .last_index = -1};
  static host hb = {.label = "B", .block_ms = BLOCK_B_MS, .last_index = -1};
  pthread_mutex_init(&hs.lock, NULL);
  pthread_mutex_init(&hb.lock, NULL);
  sio_host_callbacks cs = {&hs, on_broadcast, on_request, on_event};
  sio_host_callbacks cbig = {&hb, on_broadcast, on_request, on_event};

  /* 1 and 3: a small receive buffer, a callback that blocks. */
  sio_limits small = {.max_receive_buffer_bytes = 32768};
  sio_adapter *s = start(url, key, "/small", &small, &hs, &cs);
  sio_emitter *es = NULL;
  check(sio_emitter_new(url, key, "/small", &es) == SIO_OK, "emitter /small");
  static count_done counted = {.h = &hs};
  sio_emitter_emit(es, "block", "[]", NULL);
  long started = now_ns();
  char *text = malloc(1100);
  for (int i = 0; i < SMALL_COUNT; i++) {
    snprintf(text, 1100, "[%d, \"%01000d\"]", i, 7);
    sio_emitter_emit(es, "m", text, NULL);
  }
  free(text);
  sio_emitter_flush(es, 10000);
  /* The "block" callback is running (or about to): a completion asked now waits its turn. */
  for (int i = 0; i < 500 && !get(&hs, &hs.in_block); i++) sleep_ms(10);
  check(sio_adapter_server_count(s, on_count, &counted) == SIO_OK, "S: server_count asked while on_broadcast blocks");
  sio_emitter_emit(es, "after", "[]", NULL);
  sio_emitter_flush(es, 10000);
  int all = wait_accounted(&hs, s, SMALL_COUNT + 2, WAIT);
  sleep_ms(300); /* anything more (a duplicate) would come by now */
  for (int i = 0; i < 500 && atomic_load(&counted.runs) == 0; i++) sleep_ms(10);
  pthread_mutex_lock(&hs.lock);
  int seen = hs.broadcasts, ms = hs.ms, afters = hs.afters, blocks = hs.blocks, disorder = hs.out_of_order, errors = hs.errors;
  int reports = hs.drop_reports, differ = hs.threads_differ;
  char report[MAX_TEXT];
  snprintf(report, sizeof report, "%s", hs.drop_text);
  long block_ended = hs.block_ended_ns;
  pthread_t cb_thread = hs.thread;
  pthread_mutex_unlock(&hs.lock);
  unsigned long long lost = dropped(s);
  printf("# S: %d delivered (%d m), %llu dropped, %d drop reports; the blocking callback returned %.0f ms after the burst started\n", seen, ms, lost,
         reports, (block_ended - started) / 1e6);
  check(all && seen + (long long)lost == SMALL_COUNT + 2, "S: every message delivered or counted as dropped: %d + %llu == %d", seen, lost, SMALL_COUNT + 2);
  check(lost > 0, "S: the 32 KiB buffer dropped some of 200 KB while the callback blocked (%llu dropped)", lost);
  check(blocks == 1 && afters == 1, "S: \"block\" and \"after\" delivered once each (%d, %d)", blocks, afters);
  check(disorder == 0, "S: the delivered broadcasts keep their order (%d out of order)", disorder);
  check(reports >= 1 && strncmp(report, "ERR_SIO_OVERLOADED", 18) == 0 && strstr(report, "dropped") != NULL && strstr(report, "maxReceiveBufferBytes") != NULL,
        "S: SIO_EVENT_DROPPED reported with its code (%d reports, first: %s)", reports, report);
  check(errors == 0, "S: no SIO_EVENT_ERROR (%d)", errors);
  check(differ == 0, "S: every callback ran on one thread");
  check(atomic_load(&counted.runs) == 1 && counted.result == SIO_OK, "S: the server_count completion ran once (%d runs, result %d)", atomic_load(&counted.runs),
        counted.result);
  check(!counted.during_block && counted.ran_ns >= block_ended && pthread_equal(counted.thread, cb_thread),
        "S: it ran after the blocking callback returned, on the callback thread");

  /* 2: the default buffer holds what Redis would cut a non-reading subscriber off for. */
  sio_adapter *b = start(url, key, "/big", NULL, &hb, &cbig);
  sio_emitter *eb = NULL;
  check(sio_emitter_new(url, key, "/big", &eb) == SIO_OK, "emitter /big");
  size_t packed_len = 1 + 5 + BIG_BYTES;
  uint8_t *packed = malloc(packed_len);
  packed[0] = 0x91; /* [bin32] */
  packed[1] = 0xc6;
  packed[2] = (BIG_BYTES >> 24) & 0xff;
  packed[3] = (BIG_BYTES >> 16) & 0xff;
  packed[4] = (BIG_BYTES >> 8) & 0xff;
  packed[5] = BIG_BYTES & 0xff;
  memset(packed + 6, 0xab, BIG_BYTES);
  sio_emitter_emit(eb, "block", "[]", NULL);
  int refused = 0;
  for (int i = 0; i < BIG_COUNT; i++) refused += sio_emitter_emit_msgpack(eb, "big", packed, packed_len, NULL) != SIO_OK;
  free(packed);
  sio_emitter_emit(eb, "after", "[]", NULL);
  check(refused == 0, "B: the emitter queued %d MiB (%d refused)", BIG_COUNT, refused);
  sio_emitter_flush(eb, 30000);
  int all_b = 0;
  for (long waited = 0; waited < WAIT && !(all_b = get(&hb, &hb.broadcasts) >= BIG_COUNT + 2); waited += 10) sleep_ms(10);
  sleep_ms(300);
  pthread_mutex_lock(&hb.lock);
  int seen_b = hb.broadcasts, big = hb.ms, bad = hb.bad_payloads, errors_b = hb.errors, cuts_b = hb.cuts, reports_b = hb.drop_reports, afters_b = hb.afters;
  pthread_mutex_unlock(&hb.lock);
  unsigned long long lost_b = dropped(b);
  printf("# B: %d delivered (%d big), %llu dropped\n", seen_b, big, lost_b);
  check(all_b && seen_b == BIG_COUNT + 2 && big == BIG_COUNT && afters_b == 1, "B: all %d MiB delivered while the callback blocked %d ms (%d of %d)", BIG_COUNT, BLOCK_B_MS, seen_b,
        BIG_COUNT + 2);
  check(bad == 0, "B: every 1 MiB binary argument intact (%d bad)", bad);
  check(lost_b == 0 && reports_b == 0, "B: nothing dropped (%llu, %d reports)", lost_b, reports_b);
  check(cuts_b == 0, "B: Redis never cut the connection: no SIO_EVENT_ERROR but late PINGs (%d, of %d errors)", cuts_b, errors_b);

  sio_emitter_free(es);
  sio_emitter_free(eb);
  sio_adapter_free(s);
  sio_adapter_free(b);
  printf("DONE %d of %d checks failed\n", failures, checks);
  return failures ? 1 : 0;
}

/* sio_set_log_callback: the library's diagnostic events reach the host's logger, and stop when
 * it is turned off. Usage: log_test REDIS_URL KEY (the URL is not used: the emitter here points
 * at a port where nothing listens, so that its link goes down and says so).
 *  1. With SIO_LOG_DEBUG, an emitter on redis://127.0.0.1:1 logs its link going down: a
 *     SIO_LOG_DEBUG event whose target starts with "sioadapter::" and whose text says "Down".
 *  2. The callback cannot replace itself: sio_set_log_callback from inside it gives
 *     SIO_ERR_INVALID.
 *  3. Nothing above the chosen level arrives (SIO_LOG_TRACE events at SIO_LOG_DEBUG).
 *  4. After sio_set_log_callback(NULL, NULL, SIO_LOG_OFF) returns, no event arrives any more,
 *     though a second emitter on the same port goes down as the first did (which step 1 logged).
 * One "ok N - ..." / "not ok N - ..." line per check, then "DONE <failures> of <checks> checks
 * failed"; exit 1 on failure. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sioadapter.h"
#include "test_check.h"

static atomic_int events;
static atomic_int down_seen;
static atomic_int too_verbose;
static atomic_int bad_target;
static atomic_int reentry_result = -1;

static void on_log(void *user_data, sio_log_level level, const char *target, const char *message) {
  (void)user_data;
  atomic_fetch_add(&events, 1);
  if (level > SIO_LOG_DEBUG) atomic_fetch_add(&too_verbose, 1);
  if (!target || strncmp(target, "sioadapter::", 12) != 0) atomic_fetch_add(&bad_target, 1);
  if (level == SIO_LOG_DEBUG && message && strstr(message, "Down") != NULL) atomic_store(&down_seen, 1);
  if (atomic_load(&reentry_result) == -1) atomic_store(&reentry_result, (int)sio_set_log_callback(NULL, NULL, SIO_LOG_OFF));
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  check(sio_set_log_callback(on_log, NULL, SIO_LOG_DEBUG) == SIO_OK, "sio_set_log_callback at SIO_LOG_DEBUG");
  sio_emitter *e = NULL;
  check(sio_emitter_new("redis://127.0.0.1:1", "log-test", "/", &e) == SIO_OK, "an emitter on a port where nothing listens");
  for (int i = 0; i < 1500 && !atomic_load(&down_seen); i++) sleep_ms(10);
  check(atomic_load(&down_seen), "its link going down was logged at SIO_LOG_DEBUG (%d events)", atomic_load(&events));
  check(atomic_load(&bad_target) == 0, "every event names its sioadapter:: module");
  check(atomic_load(&reentry_result) == SIO_ERR_INVALID, "the callback cannot replace itself (%d)", atomic_load(&reentry_result));
  check(atomic_load(&too_verbose) == 0, "nothing above SIO_LOG_DEBUG arrived");
  check(sio_set_log_callback(NULL, NULL, SIO_LOG_OFF) == SIO_OK, "turned off");
  int after_off = atomic_load(&events);
  sio_emitter *e2 = NULL;
  check(sio_emitter_new("redis://127.0.0.1:1", "log-test", "/", &e2) == SIO_OK, "a second emitter on that port");
  sio_emitter_emit(e2, "x", "[]", NULL); /* queued while Redis is away */
  sleep_ms(3000);                          /* it goes down meanwhile, as the first did */
  check(atomic_load(&events) == after_off, "no event after it was turned off (%d more)", atomic_load(&events) - after_off);
  sio_emitter_free(e2);
  sio_emitter_free(e);
  check(atomic_load(&events) == after_off, "none while the emitters were freed either");
  printf("DONE %d of %d checks failed\n", failures, checks);
  return failures ? 1 : 0;
}

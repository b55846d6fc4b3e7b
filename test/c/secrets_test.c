/* What a C user sees when a handle is made with a URL holding a password: for each URL argument,
 * sio_emitter_new and sio_adapter_new with their sio_last_error(); when a handle is made, what it
 * reports later (sio_emitter_flush's error, the adapter's first SIO_EVENT_ERROR message, a
 * server_count completion's error). test/secrets.test.js checks that no password is in the output.
 * Usage: secrets_test URL... ; one line per observation: "<URL index> <what>: <text>". */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sioadapter.h"

static char event_text[2048];
static atomic_int event_seen = 0;
static char completion_text[2048];
static atomic_int completion_seen = 0;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits until *flag is set, at most timeout_ms; returns the flag. */
static int wait_flag(atomic_int *flag, long timeout_ms) {
  for (long waited = 0; !atomic_load(flag) && waited < timeout_ms; waited += 10) sleep_ms(10);
  return atomic_load(flag);
}

static void on_broadcast(void *user_data, const uint8_t *message, size_t len) {
  (void)user_data;
  (void)message;
  (void)len;
}

static void on_request(void *user_data, const sio_request *request) {
  (void)user_data;
  (void)request;
}

/* Keeps the first error message (callbacks run one at a time on the handle's thread). */
static void on_event(void *user_data, sio_event event, const char *message) {
  (void)user_data;
  if (event != SIO_EVENT_ERROR || atomic_load(&event_seen)) return;
  snprintf(event_text, sizeof event_text, "%s", message ? message : "(null)");
  atomic_store(&event_seen, 1);
}

static void on_count(void *user_data, sio_result result, const char *json, const char *error) {
  (void)user_data;
  snprintf(completion_text, sizeof completion_text, "%s json=%s error=%s", sio_result_name(result), json ? json : "(null)",
           error ? error : "(null)");
  atomic_store(&completion_seen, 1);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *url = argv[i];

    sio_emitter *emitter = NULL;
    sio_result rc = sio_emitter_new(url, "sio-secrets-c", "/", &emitter);
    printf("%d sio_emitter_new: %s: %s\n", i, sio_result_name(rc), sio_last_error());
    if (rc == SIO_OK) {
      rc = sio_emitter_emit(emitter, "secret-test", "[1]", NULL);
      printf("%d sio_emitter_emit: %s: %s\n", i, sio_result_name(rc), sio_last_error());
      rc = sio_emitter_flush(emitter, 300);
      printf("%d sio_emitter_flush: %s: %s\n", i, sio_result_name(rc), sio_last_error());
      sio_emitter_free(emitter);
    }

    sio_adapter *adapter = NULL;
    sio_host_callbacks callbacks = {NULL, on_broadcast, on_request, on_event};
    atomic_store(&event_seen, 0);
    atomic_store(&completion_seen, 0);
    rc = sio_adapter_new(url, "sio-secrets-c", "/", 300, &callbacks, &adapter);
    printf("%d sio_adapter_new: %s: %s\n", i, sio_result_name(rc), sio_last_error());
    if (rc == SIO_OK) {
      if (wait_flag(&event_seen, 8000)) printf("%d on_event error: %s\n", i, event_text);
      else printf("%d on_event: no error within 8 s\n", i);
      rc = sio_adapter_server_count(adapter, on_count, NULL);
      printf("%d sio_adapter_server_count: %s: %s\n", i, sio_result_name(rc), sio_last_error());
      if (rc == SIO_OK) {
        if (wait_flag(&completion_seen, 5000)) printf("%d server_count completion: %s\n", i, completion_text);
        else printf("%d server_count completion: none within 5 s\n", i);
      }
      sio_adapter_free(adapter);
    }
    fflush(stdout);
  }
  return 0;
}

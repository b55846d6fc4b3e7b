/* The C emitter, end to end: argument checks, then emits that a socket.io client connected to
 * a Node server (official adapter) must receive. Usage: emitter_test REDIS_URL KEY [MODE]
 * With MODE (static, dynamic or dynamic-private) the emitter is sio_emitter_new_sharded's, for
 * official sharded nodes in that subscription mode with channel prefix KEY; with MODE json, it
 * is sio_emitter_new_with_options's with SIO_PARSER_JSON, for nodes whose parser is JSON.
 * Prints "ok <n>" lines; exits non-zero on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sioadapter.h"

static int checks = 0;

#define CHECK(cond, what)                                                           \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "FAIL %s (last error: %s)\n", (what), sio_last_error());       \
      return 1;                                                                     \
    }                                                                               \
    printf("ok %d - %s\n", ++checks, (what));                                       \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s REDIS_URL KEY [static|dynamic|dynamic-private|json]\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  const char *key = argv[2];
  sio_emitter *emitter = NULL;

  char header_version[32];
  snprintf(header_version, sizeof header_version, "%d.%d.%d", SIO_VERSION_MAJOR, SIO_VERSION_MINOR, SIO_VERSION_PATCH);
  CHECK(strcmp(sio_version(), header_version) == 0, "the library's version is the header's");
  CHECK(sio_emitter_new(NULL, key, "/", &emitter) == SIO_ERR_NULL && emitter == NULL, "NULL url is rejected");
  CHECK(strstr(sio_last_error(), "url") != NULL, "the error message names the argument");
  CHECK(sio_emitter_new("http://nope", key, "/", &emitter) == SIO_ERR_INVALID, "a non-redis URL is rejected");
  CHECK(sio_emitter_new("redis://127.0.0.1:6379", key, "\xff\xfe", &emitter) == SIO_ERR_UTF8, "invalid UTF-8 is rejected");
  CHECK(sio_emitter_new(url, key, "/", NULL) == SIO_ERR_NULL, "NULL out pointer is rejected");
  if (argc == 4 && strcmp(argv[3], "json") == 0) {
    sio_emitter_options bad = {key, NULL, 5};
    CHECK(sio_emitter_new_with_options(url, "/", &bad, &emitter) == SIO_ERR_INVALID && emitter == NULL, "an unknown parser is rejected");
    CHECK(strstr(sio_last_error(), "parser") != NULL, "the error message names the option");
    sio_emitter_options options = {key, NULL, SIO_PARSER_JSON};
    CHECK(sio_emitter_new_with_options(url, "/", &options, &emitter) == SIO_OK && emitter != NULL, "JSON emitter created");
  } else if (argc == 4) {
    const char *mode = argv[3];
    unsigned int subscription = strcmp(mode, "static") == 0    ? SIO_SUBSCRIPTION_STATIC
                                : strcmp(mode, "dynamic") == 0 ? SIO_SUBSCRIPTION_DYNAMIC
                                                               : SIO_SUBSCRIPTION_DYNAMIC_PRIVATE;
    CHECK(sio_emitter_new_sharded(url, key, "/", 7, NULL, &emitter) == SIO_ERR_INVALID && emitter == NULL, "an unknown subscription mode is rejected");
    CHECK(strstr(sio_last_error(), "subscription_mode") != NULL, "the error message names the argument");
    CHECK(sio_emitter_new_sharded(url, key, "/", subscription, NULL, &emitter) == SIO_OK && emitter != NULL, "sharded emitter created");
  } else {
    CHECK(sio_emitter_new(url, key, "/", &emitter) == SIO_OK && emitter != NULL, "emitter created");
  }
  CHECK(strcmp(sio_last_error(), "") == 0, "success clears the last error");

  CHECK(sio_emitter_emit(emitter, "disconnect", "[]", NULL) == SIO_ERR_INVALID, "reserved event names are refused");
  CHECK(strstr(sio_last_error(), "reserved event name") != NULL, "with the official message");
  CHECK(sio_emitter_emit(emitter, "x", "{not json", NULL) == SIO_ERR_INVALID, "bad JSON is refused");
  CHECK(sio_emitter_emit(NULL, "x", "[]", NULL) == SIO_ERR_NULL, "NULL handle is refused");
  CHECK(strcmp(sio_result_name(SIO_ERR_TIMEOUT), "SIO_ERR_TIMEOUT") == 0, "result names");

  /* What the client must receive, in this order. */
  CHECK(sio_emitter_emit(emitter, "from-c", "[\"hello\", 1, 2.5, {\"nested\": [true, null]}]", NULL) == SIO_OK, "emit to everybody");
  const char *rooms[] = {"c-room"};
  sio_target to_room = {rooms, 1, NULL, 0, SIO_FLAG_COMPRESS};
  CHECK(sio_emitter_emit(emitter, "to-room", "[\"only room members\"]", &to_room) == SIO_OK, "emit to a room");
  const char *except[] = {"c-room"};
  sio_target except_room = {NULL, 0, except, 1, SIO_FLAG_NO_COMPRESS};
  CHECK(sio_emitter_emit(emitter, "not-for-room", "[]", &except_room) == SIO_OK, "emit except a room");
  /* msgpack: ["bin", <bin 3 bytes 01 02 03>] */
  const unsigned char packed[] = {0x92, 0xa3, 'b', 'i', 'n', 0xc4, 0x03, 0x01, 0x02, 0x03};
  CHECK(sio_emitter_emit_msgpack(emitter, "binary", packed, sizeof packed, NULL) == SIO_OK, "emit msgpack with binary");
  const char *joined[] = {"joined-by-c", "left-by-c"};
  CHECK(sio_emitter_sockets_join(emitter, &to_room, joined, 2) == SIO_OK, "socketsJoin");
  const char *left[] = {"left-by-c"};
  CHECK(sio_emitter_sockets_leave(emitter, &to_room, left, 1) == SIO_OK, "socketsLeave");
  CHECK(sio_emitter_server_side_emit(emitter, "srv-from-c", "[42]") == SIO_OK, "serverSideEmit");
  CHECK(sio_emitter_emit(emitter, "done", "[]", NULL) == SIO_OK, "final marker");
  CHECK(sio_emitter_flush(emitter, 5000) == SIO_OK, "flushed to Redis");

  sio_emitter_free(emitter);
  sio_emitter_free(NULL);
  printf("ok %d - freed\n", ++checks);
  return 0;
}

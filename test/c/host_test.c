/* A C "socket.io server" in the cluster through sio_adapter: it hosts two sockets of its own,
 * answers the other nodes' requests, receives their broadcasts and asks the cluster.
 * Usage: host_test REDIS_URL KEY [per-room | json | static | dynamic | dynamic-private]:
 * - per-room: made with sio_adapter_new_with_options (perRoomSubscriptions and
 *   publishOnSpecificResponseChannel on);
 * - json: made with sio_adapter_new_with_options, parser SIO_PARSER_JSON;
 * - static, dynamic, dynamic-private: a node of a cluster of sharded adapters with that
 *   subscriptionMode (sio_adapter_new_sharded, channel prefix KEY); the sharded protocol has no
 *   allRooms request, which the handle answers from a fetchSockets.
 * Prints protocol lines for test/c-api.test.js, then waits for its stdin to close before leaving
 * the cluster. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sioadapter.h"

static atomic_int ready = 0;
static atomic_int completions = 0;

static const char *SOCKETS_JSON =
    "[{\"id\":\"c-sock-1\",\"handshake\":{\"headers\":{},\"time\":\"\",\"address\":\"c-host\",\"xdomain\":false,"
    "\"secure\":false,\"issued\":0,\"url\":\"/\",\"query\":{},\"auth\":{}},\"rooms\":[\"c-sock-1\",\"c-room\"],"
    "\"data\":{\"lang\":\"C\"}},"
    "{\"id\":\"c-sock-2\",\"handshake\":{\"headers\":{},\"time\":\"\",\"address\":\"c-host\",\"xdomain\":false,"
    "\"secure\":false,\"issued\":0,\"url\":\"/\",\"query\":{},\"auth\":{}},\"rooms\":[\"c-sock-2\"],\"data\":{}}]";

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void on_broadcast(void *user_data, const uint8_t *message, size_t len) {
  (void)user_data;
  /* A real host decodes the msgpack [uid, packet, opts]; the test only looks for the event name. */
  const char *needle = "from-node";
  for (size_t i = 0; i + strlen(needle) <= len; i++) {
    if (memcmp(message + i, needle, strlen(needle)) == 0) {
      printf("BROADCAST from-node %zu\n", len);
      fflush(stdout);
      return;
    }
  }
}

static void on_request(void *user_data, const sio_request *request) {
  sio_adapter *adapter = *(sio_adapter **)user_data;
  if (adapter == NULL) return;
  if (request->request_id == NULL) { /* join/leave/disconnect, serverSideEmit without ack */
    printf("REQUEST %u %.*s\n", request->kind, (int)request->payload_len, (const char *)request->payload);
    fflush(stdout);
    return;
  }
  const char *answer = NULL;
  switch (request->kind) {
    case SIO_REQUEST_KIND_ALL_ROOMS: answer = "[\"c-sock-1\",\"c-sock-2\",\"c-room\"]"; break;
    case SIO_REQUEST_KIND_REMOTE_FETCH: answer = SOCKETS_JSON; break;
    case SIO_REQUEST_KIND_SERVER_SIDE_EMIT: answer = "\"pong-from-c\""; break; /* with ack */
    default: return;
  }
  if (sio_adapter_respond(adapter, request->kind, request->request_id, request->requester, answer) != SIO_OK) {
    fprintf(stderr, "respond failed: %s\n", sio_last_error());
  }
}

static void on_event(void *user_data, sio_event event, const char *message) {
  (void)user_data;
  if (event == SIO_EVENT_READY) atomic_store(&ready, 1);
  else fprintf(stderr, "adapter error: %s\n", message);
}

static void print_completion(void *user_data, sio_result result, const char *json, const char *error) {
  printf("%s %s %s\n", (const char *)user_data, sio_result_name(result), json ? json : (error ? error : ""));
  fflush(stdout);
  atomic_fetch_add(&completions, 1);
}

/* The sio_subscription mode named `name`, or -1 when it names none. */
static int subscription_mode(const char *name) {
  if (strcmp(name, "static") == 0) return SIO_SUBSCRIPTION_STATIC;
  if (strcmp(name, "dynamic") == 0) return SIO_SUBSCRIPTION_DYNAMIC;
  if (strcmp(name, "dynamic-private") == 0) return SIO_SUBSCRIPTION_DYNAMIC_PRIVATE;
  return -1;
}

int main(int argc, char **argv) {
  const char *variant = argc == 4 ? argv[3] : "";
  bool per_room = strcmp(variant, "per-room") == 0;
  bool json = strcmp(variant, "json") == 0;
  int mode = argc == 4 ? subscription_mode(variant) : -1;
  bool sharded = mode >= 0;
  if (argc != 3 && !(argc == 4 && (per_room || json || sharded))) {
    fprintf(stderr, "usage: %s REDIS_URL KEY [per-room|json|static|dynamic|dynamic-private]\n", argv[0]);
    return 2;
  }
  sio_adapter *adapter = NULL;
  sio_host_callbacks callbacks = {NULL, on_broadcast, on_request, on_event};
  if (sio_adapter_new(argv[1], argv[2], "nope", 0, &callbacks, &adapter) != SIO_ERR_INVALID ||
      sio_adapter_new_sharded(argv[1], "nope", NULL, &callbacks, &adapter) != SIO_ERR_INVALID) {
    fprintf(stderr, "a namespace without '/' must be refused\n");
    return 1;
  }
  sio_sharded_options bad_mode = {argv[2], 7, 0, NULL};
  if (sio_adapter_new_sharded(argv[1], "/", &bad_mode, &callbacks, &adapter) != SIO_ERR_INVALID) {
    fprintf(stderr, "an unknown subscription mode must be refused\n");
    return 1;
  }
  /* user_data must be the handle for on_request: create, then point the callbacks at it. */
  static sio_adapter *self = NULL;
  callbacks.user_data = &self;
  sio_adapter_options bad_parser = {argv[2], 0, false, false, NULL, 9};
  if (sio_adapter_new_with_options(argv[1], "/", &bad_parser, &callbacks, &adapter) != SIO_ERR_INVALID) {
    fprintf(stderr, "an unknown parser must be refused\n");
    return 1;
  }
  sio_adapter_options options = {argv[2], 2000, per_room, per_room, NULL, json ? SIO_PARSER_JSON : SIO_PARSER_NOTEPACK};
  sio_sharded_options sharded_options = {argv[2], (uint32_t)mode, 2000, NULL};
  sio_result made = sharded ? sio_adapter_new_sharded(argv[1], "/", &sharded_options, &callbacks, &adapter)
                    : per_room || json ? sio_adapter_new_with_options(argv[1], "/", &options, &callbacks, &adapter)
                               : sio_adapter_new(argv[1], argv[2], "/", 2000, &callbacks, &adapter);
  if (made != SIO_OK) {
    fprintf(stderr, "sio_adapter_new: %s\n", sio_last_error());
    return 1;
  }
  self = adapter;
  for (int i = 0; i < 500 && !atomic_load(&ready); i++) sleep_ms(10);
  if (!atomic_load(&ready)) {
    fprintf(stderr, "never ready\n");
    return 1;
  }
  const char *rooms[] = {"c-sock-1", "c-sock-2", "c-room"};
  for (size_t i = 0; i < 3; i++) sio_adapter_room_created(adapter, rooms[i]);
  printf("READY %s\n", sio_adapter_uid(adapter));
  fflush(stdout);

  /* Wait for the test to say the Node side is connected, then ask the cluster. */
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  /* The sharded protocol has no allRooms request: the handle gathers the rooms from a fetch. */
  sio_adapter_all_rooms(adapter, print_completion, "ALL_ROOMS");
  sio_adapter_server_count(adapter, print_completion, "COUNT");
  sio_adapter_fetch_sockets(adapter, NULL, 0, print_completion, "FETCH");
  sio_adapter_server_side_emit(adapter, "ping-from-c", "[1]", print_completion, "SSE_ACK");
  for (int i = 0; i < 1000 && atomic_load(&completions) < 4; i++) sleep_ms(10);
  /* To one socket of the Node server: on its room's own channel in the dynamic modes. */
  const char *node_room[] = {"node-room"};
  sio_target to_node_room = {node_room, 1, NULL, 0, 0};
  sio_adapter_broadcast(adapter, "from-c-to-room", "[\"to the node room\"]", &to_node_room);
  sio_adapter_server_side_emit(adapter, "no-ack-from-c", "[2]", NULL, NULL);
  sio_adapter_broadcast(adapter, "from-c", "[\"hi from C\"]", NULL);
  printf("BROADCAST_SENT\n");
  fflush(stdout);

  while (fgets(line, sizeof line, stdin)) {
  }
  sio_adapter_free(adapter);
  sio_adapter_free(NULL);
  printf("FREED\n");
  return 0;
}

"use strict";
// The npm package's Emitter (the API of @socket.io/redis-emitter, on the Rust core) against
// socket.io servers running the official adapter and ours.
const { test, describe, before, after } = require("node:test");
const assert = require("node:assert");
const path = require("node:path");
const { startServers, uniqueKey, stopAll } = require("./helpers/cluster");

const { Emitter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, "..", "npm"));
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

after(stopAll);

for (const kind of ["official", "ours"]) {
  describe(`Emitter → ${kind} adapter`, () => {
    let server, emitter, member, other, admin;

    before(async () => {
      const key = uniqueKey();
      [server] = await startServers([{ adapter: kind, client: "node-redis", namespaces: ["/", "/admin"] }], { key });
      await server.command("onServerEvent", { event: "from-emitter" });
      member = await server.connect("/");
      other = await server.connect("/");
      admin = await server.connect("/admin");
      await server.command("join", { nsp: "/", socketId: member.id, rooms: ["vip"] });
      emitter = new Emitter(REDIS_URL, { key });
    });

    after(() => emitter.close());

    test("emit reaches every client of the namespace, with binary intact", async () => {
      assert.strictEqual(emitter.emit("hello", "world", { n: 1 }, Buffer.from([1, 2])), true);
      for (const client of [member, other]) {
        const [[text, obj, bin]] = (await client.waitForEvent("hello")).filter((e) => e.event === "hello").map((e) => e.args);
        assert.deepStrictEqual([text, obj, [...Buffer.from(bin)]], ["world", { n: 1 }, [1, 2]]);
      }
      assert.deepStrictEqual(admin.received("hello"), []);
    });

    test("to(room), except(room), of(nsp), volatile and compress select the right clients", async () => {
      emitter.to("vip").compress(false).emit("to-vip", 1);
      emitter.except("vip").emit("not-vip", 2);
      emitter.of("admin").volatile.emit("admin-only", 3);
      emitter.emit("marker");
      await Promise.all([member.waitForEvent("marker"), other.waitForEvent("marker"), admin.waitForEvent("admin-only")]);
      assert.deepStrictEqual(member.received("to-vip"), [[1]]);
      assert.deepStrictEqual(other.received("to-vip"), []);
      assert.deepStrictEqual(member.received("not-vip"), []);
      assert.deepStrictEqual(other.received("not-vip"), [[2]]);
      assert.deepStrictEqual(admin.received("admin-only"), [[3]]);
    });

    test("socketsJoin, socketsLeave and disconnectSockets act on the selected sockets", async () => {
      emitter.to("vip").socketsJoin("joined");
      emitter.socketsLeave("nothing-to-leave");
      emitter.to("joined").emit("after-join");
      await member.waitForEvent("after-join");
      emitter.except("vip").disconnectSockets(true);
      assert.strictEqual(await other.waitForDisconnect(), "io server disconnect");
    });

    test("serverSideEmit reaches the servers' listeners; acks and reserved events are refused", async () => {
      emitter.serverSideEmit("from-emitter", "a", 2);
      await server.waitForServerEvent("from-emitter");
      assert.deepStrictEqual(server.serverEventCalls("from-emitter")[0].args, ["a", 2]);
      assert.throws(() => emitter.serverSideEmit("x", () => {}), /Acknowledgements are not supported/);
      assert.throws(() => emitter.emit("disconnect"), /"disconnect" is a reserved event name/);
      assert.throws(() => new Emitter(REDIS_URL, { key: 5 }), /invalid option `key`/);
    });
  });
}

/**
 * Our Emitter and the official one (over node-redis), each with a key of its own, and what a
 * subscriber to `patterns(key)` of each key sees: "channel-after-the-key hex-of-the-message".
 */
async function bothEmitters(patterns) {
  const { createClient } = require("redis");
  const { Emitter: OfficialEmitter } = require("@socket.io/redis-emitter");
  const [oursKey, officialKey] = [uniqueKey(), uniqueKey()];
  const publisher = createClient({ url: REDIS_URL });
  const subscriber = createClient({ url: REDIS_URL });
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const seen = { ours: [], official: [] };
  for (const [kind, key] of [["ours", oursKey], ["official", officialKey]]) {
    await subscriber.pSubscribe(patterns(key), (message, channel) => seen[kind].push(`${channel.slice(key.length)} ${message.toString("hex")}`), true);
  }
  const ours = new Emitter(REDIS_URL, { key: oursKey });
  const official = new OfficialEmitter(publisher, { key: officialKey });
  /** Resolves once each subscriber saw `count` messages, or after 10 s. */
  const received = async (count) => {
    const deadline = Date.now() + 10000;
    while ((seen.ours.length < count || seen.official.length < count) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };
  const close = async () => {
    await ours.close();
    await Promise.all([publisher.quit(), subscriber.quit()]);
  };
  return { ours, official, seen, received, close };
}

test("the Emitter publishes the official emitter's bytes, on the same channels", async () => {
  const { ours, official, seen, received, close } = await bothEmitters((key) => `${key}#*`);
  try {
    for (const emitter of [ours, official]) {
      emitter.emit("hello", "world", { n: 1, list: [1.5, null, true] }, Buffer.from([1, 2]));
      emitter.to("vip").emit("to-vip", 1);
      emitter.to(["a", "b"]).except("c").volatile.emit("many", "x".repeat(300));
      emitter.to(5).compress(false).emit("numbered");
      emitter.of("admin").except(["x", "y"]).emit("admin-only", { deep: { er: [1, { est: "é" }] } });
      const operator = emitter.to("same");
      operator.emit("twice", 1);
      operator.emit("twice", 2);
    }
    await received(7);
    assert.strictEqual(seen.official.length, 7);
    assert.deepStrictEqual(seen.ours, seen.official);
  } finally {
    await close();
  }
});

// The Emitter hands the emits of one run of JavaScript to the core in one call (npm/lib/emitter.js
// EmitBatch). What users see must not change: the order of everything published (emits to any
// selection, `of()` namespaces, requests in between, more emits than one hand-over takes), the
// bytes, and `emit` throwing at once for a full queue or a too large message, as when each
// emit went to the core alone.

test("emits handed over together keep the official emitter's order and bytes, requests and namespaces included", async () => {
  // Broadcast channels (K#...) and the request channel (K-request#...).
  const { ours, official, seen, received, close } = await bothEmitters((key) => [`${key}#*`, `${key}-request#*`]);
  const sequence = (emitter) => {
    const [vip, admin] = [emitter.to("vip"), emitter.of("admin")];
    emitter.emit("first", 1);
    vip.emit("to-vip", 2);
    emitter.to("vip").socketsJoin("joined");
    admin.emit("admin-only", 3);
    emitter.emit("after-admin", 4);
    emitter.serverSideEmit("server", 5);
    // More than one hand-over takes (256), alternating selections and namespaces.
    for (let i = 0; i < 700; i++) [emitter, vip, admin, emitter.except("x")][i % 4].emit("n", i, "y".repeat(i % 50));
    emitter.disconnectSockets(true);
    emitter.emit("last", 6);
  };
  try {
    sequence(ours);
    // A second run of JavaScript, after a turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    sequence(ours);
    sequence(official);
    await new Promise((resolve) => setImmediate(resolve));
    sequence(official);
    const expected = 2 * 708;
    await received(expected);
    assert.strictEqual(seen.official.length, expected);
    assert.strictEqual(seen.ours.length, expected);
    for (let i = 0; i < expected; i++) assert.strictEqual(seen.ours[i], seen.official[i], `message ${i}`);
  } finally {
    await close();
  }
});

test("emit throws at once when the publish queue is full, after exactly what fits", async () => {
  const { freePort } = require("./helpers/private-redis");
  // Nothing listens there: everything emitted waits in the queue.
  const url = `redis://127.0.0.1:${await freePort()}`;
  for (const [limits, full] of [
    [{ maxQueuedPublishes: 300 }, (stats) => stats.pending === 300],
    [{ maxQueuedBytes: 20000 }, (stats, weight) => stats.pendingBytes + weight > 20000],
  ]) {
    const emitter = new Emitter(url, { key: uniqueKey(), ...limits });
    try {
      let accepted = 0;
      let error;
      // In one run of JavaScript (one hand-over would take up to 256), then across turns.
      for (let turn = 0; turn < 40 && !error; turn++) {
        for (let i = 0; i < 100 && !error; i++) {
          try {
            emitter.to("room").emit("e", "z".repeat(100), accepted);
            accepted += 1;
          } catch (err) {
            error = err;
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(error, `a full queue was reported (${JSON.stringify(limits)})`);
      assert.strictEqual(error.code, "ERR_SIO_OVERLOADED", error.message);
      const stats = emitter.stats().redis;
      assert.strictEqual(stats.pending, accepted, "every emit that returned is queued");
      assert.strictEqual(stats.dropped, 1, "the refused one is counted");
      // The messages are alike (accepted < 1000 keeps the counter's digits at most 3).
      assert.ok(full(stats, Math.ceil(stats.pendingBytes / stats.pending)), `refused only when it did not fit: ${JSON.stringify(stats)}`);
      // The same message again (a smaller one may still fit the bytes left): still refused.
      assert.throws(() => emitter.to("room").emit("e", "z".repeat(100), accepted), { code: "ERR_SIO_OVERLOADED" });
      assert.strictEqual(emitter.stats().redis.dropped, 2);
    } finally {
      await emitter.close();
    }
  }
});

test("a too large emit throws at once; the emits around it are delivered in order; emit after close throws", async () => {
  const { createClient } = require("redis");
  const key = uniqueKey();
  const subscriber = createClient({ url: REDIS_URL });
  await subscriber.connect();
  const seen = [];
  await subscriber.pSubscribe(`${key}#*`, (message) => seen.push(message.length), true);
  const emitter = new Emitter(REDIS_URL, { key, maxMessageBytes: 2000 });
  try {
    emitter.emit("small", "a");
    emitter.emit("small", "b");
    assert.throws(() => emitter.emit("big", "c".repeat(3000)), { code: "ERR_SIO_TOO_LARGE" });
    emitter.emit("medium", "d".repeat(1900));
    const deadline = Date.now() + 5000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    assert.strictEqual(seen.length, 3);
    assert.ok(seen[0] < 100 && seen[1] < 100 && seen[2] > 1900, `${seen}`);
    assert.strictEqual(emitter.stats().redis.dropped, 0, "refused before it was queued");
  } finally {
    await emitter.close();
    await subscriber.quit();
  }
  assert.throws(() => emitter.emit("late"), { code: "ERR_SIO_CLOSED" });
});

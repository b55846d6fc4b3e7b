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

test("the Emitter publishes the official emitter's bytes, on the same channels", async () => {
  const { createClient } = require("redis");
  const { Emitter: OfficialEmitter } = require("@socket.io/redis-emitter");
  const [oursKey, officialKey] = [uniqueKey(), uniqueKey()];
  const publisher = createClient({ url: REDIS_URL });
  const subscriber = createClient({ url: REDIS_URL });
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const seen = { [oursKey]: [], [officialKey]: [] };
  for (const key of [oursKey, officialKey]) {
    await subscriber.pSubscribe(`${key}#*`, (message, channel) => seen[key].push(`${channel.slice(key.length)} ${message.toString("hex")}`), true);
  }
  const ours = new Emitter(REDIS_URL, { key: oursKey });
  const official = new OfficialEmitter(publisher, { key: officialKey });
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
    const deadline = Date.now() + 5000;
    while ((seen[oursKey].length < 7 || seen[officialKey].length < 7) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.strictEqual(seen[officialKey].length, 7);
    assert.deepStrictEqual(seen[oursKey], seen[officialKey]);
  } finally {
    await ours.close();
    await Promise.all([publisher.quit(), subscriber.quit()]);
  }
});

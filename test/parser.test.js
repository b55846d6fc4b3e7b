'use strict';
// The `parser` option (issue 16): any `{ encode, decode }`, used as the official adapter uses it
// (broadcasts, broadcasts with ack and their acks; every other request and response stays JSON).
// Mixed clusters of official nodes and ours configured with the same parser, for JSON (what the
// official suite's "custom parser" test uses) and msgpackr (msgpack, other bytes than
// notepack.io's): every broadcast kind from every node, broadcasts with ack both ways, the
// JSON requests beside them, the emitters with the same parser, and what the parser cannot read.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { uniqueKey, startServers, redisClient, stopAll } = require('./helpers/cluster');
const { parserNamed, PARSER_NAMES } = require('./helpers/parsers');

const { Emitter: OursEmitter, createAdapter } = require(process.env.SIOADAPTER_MODULE || path.join(__dirname, '..', 'npm'));
const { Emitter: OfficialEmitter } = require('@socket.io/redis-emitter');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
/** Gives the test servers the `stats` command. */
const LIMITS_COMMANDS = path.join(__dirname, 'helpers', 'limits-commands.js');

after(stopAll);

let seq = 0;
const uniq = (prefix) => `${prefix}-${++seq}`;

for (const parser of PARSER_NAMES) {
  describe(`parser ${parser}: official and ours in one cluster`, () => {
    const nodes = {};
    const clients = {};
    let key;

    before(async () => {
      key = uniqueKey();
      const [A, B, C] = await startServers(
        [
          { adapter: 'ours', label: 'A:ours' },
          { adapter: 'official', label: 'B:official' },
          { adapter: 'ours', label: 'C:ours', perRoomSubscriptions: true },
        ],
        { key, parser, namespaces: ['/', '/admin'], requestsTimeout: 3000, adapterEvents: true, commandModules: [LIMITS_COMMANDS] },
      );
      Object.assign(nodes, { A, B, C });
      for (const [name, node] of Object.entries(nodes)) {
        clients[`${name}1`] = await node.connect('/');
        clients[`${name}2`] = await node.connect('/');
        clients[`${name}admin`] = await node.connect('/admin');
      }
      for (const name of ['A1', 'B1', 'C1']) {
        await nodes[name[0]].command('join', { nsp: '/', socketId: clients[name].serverSocketId, rooms: ['vip'] });
      }
    });

    const main = () => ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'].map((n) => clients[n]);

    it('a broadcast from each node reaches every client of the namespace once, with its arguments', async () => {
      for (const from of ['A', 'B', 'C']) {
        const event = uniq(`all-${from}`);
        // What the official suite's "custom parser" test sends.
        await nodes[from].command('emit', { event, args: [1, '2', [3], { deep: { x: null, y: 'é' } }] });
        await Promise.all(main().map((c) => c.waitForEvent(event)));
        await nodes[from].flush([...main(), clients.Aadmin, clients.Badmin, clients.Cadmin]);
        for (const c of main()) assert.deepStrictEqual(c.received(event), [[1, '2', [3], { deep: { x: null, y: 'é' } }]], `${c.tag} from ${from}`);
        for (const name of ['Aadmin', 'Badmin', 'Cadmin']) assert.deepStrictEqual(clients[name].received(event), [], `${name} from ${from}`);
      }
    });

    it('to(room) and except(room) from each node select the same clients on every node', async () => {
      for (const from of ['A', 'B', 'C']) {
        const [toRoom, notRoom] = [uniq(`vip-${from}`), uniq(`not-vip-${from}`)];
        await nodes[from].command('emit', { to: 'vip', event: toRoom, args: [from] });
        await nodes[from].command('emit', { except: 'vip', event: notRoom, args: [from] });
        await nodes[from].flush(main());
        for (const c of main()) {
          const vip = c.tag === clients.A1.tag || c.tag === clients.B1.tag || c.tag === clients.C1.tag;
          assert.deepStrictEqual(c.received(toRoom), vip ? [[from]] : [], `${c.tag}: to(vip) from ${from}`);
          assert.deepStrictEqual(c.received(notRoom), vip ? [] : [[from]], `${c.tag}: except(vip) from ${from}`);
        }
      }
    });

    if (parser !== 'json') {
      it('binary arguments arrive intact from each node (a parser that carries them)', async () => {
        for (const from of ['A', 'B', 'C']) {
          const event = uniq(`bin-${from}`);
          await nodes[from].command('emit', { event, args: [{ __buffer: [1, 2, 255] }, 'x'] });
          await Promise.all(main().map((c) => c.waitForEvent(event)));
          for (const c of main()) {
            const [[bin, text]] = c.received(event);
            assert.deepStrictEqual([[...Buffer.from(bin)], text], [[1, 2, 255], 'x'], `${c.tag} from ${from}`);
          }
        }
      });
    }

    it('a broadcast with ack from each node gets every client\'s answer, once', async () => {
      for (const c of main()) c.setAckHandler('ask', (n) => `${c.tag}:${n}`);
      for (const from of ['A', 'B', 'C']) {
        const res = await nodes[from].command('emitWithAck', { event: 'ask', args: [from], timeout: 2000 }, 6000);
        assert.equal(res.err, null, `${from}: ${JSON.stringify(res.err)}`);
        assert.deepStrictEqual([...res.responses].sort(), main().map((c) => `${c.tag}:${from}`).sort(), `answers to ${from}`);
        assert.ok(res.ms < 1500, `${from}: settled after ${Math.round(res.ms)} ms, not at its timeout`);
      }
    });

    it('JSON requests work beside it: fetchSockets and serverCount from each node', async () => {
      for (const from of ['A', 'B', 'C']) {
        const fetched = await nodes[from].command('fetchSockets', {}, 6000);
        assert.equal(fetched.ok, true, JSON.stringify(fetched.error));
        assert.deepStrictEqual(fetched.value.map((s) => s.id).sort(), main().map((c) => c.serverSocketId).sort(), `fetchSockets from ${from}`);
        const count = await nodes[from].command('serverCount', {}, 6000);
        assert.equal(count.value, 3, `serverCount from ${from}`);
      }
    });

    it('our Emitter and the official one, given the same parser, reach every node', async () => {
      const publisher = await redisClient();
      const emitters = {
        ours: new OursEmitter(REDIS_URL, { key, parser: parserNamed(parser) }),
        official: new OfficialEmitter(publisher, { key, parser: parserNamed(parser) }),
      };
      try {
        for (const [kind, emitter] of Object.entries(emitters)) {
          const [all, vip, admin] = [uniq(`emitter-${kind}`), uniq(`emitter-vip-${kind}`), uniq(`emitter-admin-${kind}`)];
          emitter.emit(all, 'hello', { n: 1 });
          emitter.to('vip').emit(vip, 2);
          emitter.of('/admin').emit(admin, 3);
          await Promise.all(main().map((c) => c.waitForEvent(all)));
          await Promise.all(['Aadmin', 'Badmin', 'Cadmin'].map((n) => clients[n].waitForEvent(admin)));
          await nodes.A.flush(main());
          for (const c of main()) {
            assert.deepStrictEqual(c.received(all), [['hello', { n: 1 }]], `${kind} emitter: ${c.tag}`);
            const isVip = [clients.A1, clients.B1, clients.C1].includes(c);
            assert.deepStrictEqual(c.received(vip), isVip ? [[2]] : [], `${kind} emitter to(vip): ${c.tag}`);
          }
        }
      } finally {
        await emitters.ours.close();
        await publisher.quit();
      }
    });

    it('what the parser cannot read is dropped, counted and reported (ERR_SIO_MALFORMED); the node keeps working', async () => {
      const publisher = await redisClient();
      try {
        const before = await Promise.all([nodes.A, nodes.C].map((n) => n.command('stats', { nsp: '/' })));
        const eventsFrom = [nodes.A, nodes.C].map((n) => n.adapterEvents.length);
        // Garbage for either parser, on the broadcast, request and response channels.
        const garbage = Buffer.from([0xc1, 0x7d, 0x00, 0xff]);
        await publisher.publish(`${key}#/#`, garbage);
        await publisher.publish(`${key}-request#/#`, garbage);
        await publisher.publish(`${key}-response#/#`, garbage);
        await Promise.all([nodes.A, nodes.C].map((n, i) => n.waitForMessages('adapterEvent',
          () => n.adapterEvents.slice(eventsFrom[i]).some((e) => e.event === 'error' && e.error && e.error.code === 'ERR_SIO_MALFORMED'),
          5000, `${n.label}: adapter 'error' ERR_SIO_MALFORMED`)));
        // The first drop is reported at once; the three are counted once all three arrived.
        const deadline = Date.now() + 5000;
        let counted;
        do {
          const now = await Promise.all([nodes.A, nodes.C].map((n) => n.command('stats', { nsp: '/' })));
          counted = now.map((s, i) => s.malformed - before[i].malformed);
        } while (counted.some((n) => n < 3) && Date.now() < deadline && (await new Promise((r) => setTimeout(r, 50, true))));
        assert.deepStrictEqual(counted, [3, 3], 'A and C: the three malformed messages counted');
        const event = uniq('after-garbage');
        await nodes.B.command('emit', { event });
        await Promise.all(main().map((c) => c.waitForEvent(event)));
      } finally {
        await publisher.quit();
      }
    });
  });
}

describe('parser option: checked when the adapter is made', () => {
  it('refuses what is not a parser, with the option named', () => {
    for (const parser of [5, 'json', { encode: JSON.stringify }, { decode: JSON.parse }]) {
      assert.throws(() => createAdapter(REDIS_URL, undefined, { parser }), (err) => /invalid option `parser`/.test(err.message) && /encode\(\) and decode\(\)/.test(err.message), JSON.stringify(parser));
    }
    assert.throws(() => new OursEmitter(REDIS_URL, { parser: {} }), /invalid option `parser`.*encode\(\)/);
  });
});

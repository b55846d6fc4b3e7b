"use strict";
// Broadcasts whose client packet the Rust core made ahead (`clientText` records): socket.io-
// parser's text of the packet, byte for byte what the server's encoder would make of the
// decoded message, so the receiving node neither decodes the msgpack message nor encodes the
// packet again on its JavaScript thread. Used only when the server's encoder is socket.io-
// parser's default one (a probe checks it encodes as the core does); the core leaves every
// packet it cannot reproduce exactly (binary, dates, odd keys) as an ordinary broadcast record.

const notepack = require("notepack.io");

const TEXT = Symbol("sioadapter.clientText");
const RAW = Symbol("sioadapter.raw");
const DATA = Symbol("sioadapter.data");

/** True when `encoder` writes packets as socket.io-parser's default encoder does. */
function isDefaultEncoder(encoder) {
  if (!encoder || typeof encoder.encode !== "function" || typeof encoder.encodeAsString !== "function" || encoder.replacer !== undefined) return false;
  try {
    const probe = (nsp) => encoder.encode({ type: 2, nsp, data: ["e", { "1": 1.5e-7, b: "\u0001\"" }] });
    const [root] = probe("/");
    const [named] = probe("/n");
    return root === '2["e",{"1":1.5e-7,"b":"\\u0001\\""}]' && named === '2/n,["e",{"1":1.5e-7,"b":"\\u0001\\""}]';
  } catch {
    return false;
  }
}

/** `encoder` that hands back the text a packet came with, and encodes any other packet itself. */
function textAwareEncoder(encoder) {
  return {
    encode(packet) {
      const text = packet[TEXT];
      return text !== undefined ? [text] : encoder.encode(packet);
    },
  };
}

/**
 * An EVENT packet that carries its encoded text; its `data` is decoded from the message only
 * when something reads it (e.g. `socket.onAnyOutgoing` listeners). Setting `data` drops the text.
 */
class TextPacket {
  constructor(nsp, text, raw) {
    this.type = 2;
    this.nsp = nsp;
    this[TEXT] = text;
    this[RAW] = raw;
    this[DATA] = undefined;
  }

  get data() {
    if (this[DATA] === undefined) this[DATA] = notepack.decode(this[RAW])[1].data;
    return this[DATA];
  }

  set data(value) {
    this[DATA] = value;
    this[TEXT] = undefined;
  }
}

/** Reads a `clientText` record: `[opts length][text length]` (u32 LE), opts JSON, text, the msgpack message. */
function readClientText(bytes, nsp) {
  const optsEnd = 8 + bytes.readUInt32LE(0);
  const textEnd = optsEnd + bytes.readUInt32LE(4);
  return {
    opts: JSON.parse(bytes.toString("utf8", 8, optsEnd)),
    packet: new TextPacket(nsp, bytes.toString("utf8", optsEnd, textEnd), bytes.subarray(textEnd)),
  };
}

module.exports = { isDefaultEncoder, textAwareEncoder, readClientText };

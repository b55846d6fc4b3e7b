"use strict";
// Broadcasts whose client packet the Rust core made ahead (`clientText` records): socket.io-
// parser's text of the packet, byte for byte what the server's encoder would make of the
// decoded message, so the receiving node neither decodes the msgpack message nor encodes the
// packet again on its JavaScript thread. Used only when the server's encoder is socket.io-
// parser's default one (a probe checks it encodes as the core does); the core leaves every
// packet it cannot reproduce exactly (binary, dates, odd keys, NaN, -0) as an ordinary broadcast
// record. A text record does not carry the msgpack message: the JSON part of the text reads back
// (JSON.parse) as the data notepack would have decoded.

const TEXT = Symbol("sioadapter.clientText");
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
 * An EVENT packet that carries its encoded text; its `data` is parsed from the text only when
 * something reads it (e.g. `socket.onAnyOutgoing` listeners). Setting `data` drops the text.
 */
class TextPacket {
  constructor(nsp, text) {
    this.type = 2;
    this.nsp = nsp;
    this[TEXT] = text;
  }

  get data() {
    if (!Object.prototype.hasOwnProperty.call(this, DATA)) this[DATA] = JSON.parse(this[TEXT].slice(this.nsp === "/" ? 1 : this.nsp.length + 2));
    return this[DATA];
  }

  set data(value) {
    this[DATA] = value;
    this[TEXT] = undefined;
  }
}

/** A `clientText` record (its opts JSON) and the text that came with it, as a packet and its opts. */
function readClientText(bytes, text, nsp) {
  return { opts: JSON.parse(bytes.toString("utf8")), packet: new TextPacket(nsp, text) };
}

module.exports = { isDefaultEncoder, textAwareEncoder, readClientText };

"use strict";
// Broadcasts whose client packet the Rust core made ahead (`clientText` records): socket.io-
// parser's text of the packet, byte for byte what the server's encoder would make of the
// decoded message, so the receiving node neither decodes the msgpack message nor encodes the
// packet again on its JavaScript thread. Used only when the server's encoder is socket.io-
// parser's default one (a probe checks it encodes as the core does); the core leaves every
// packet it cannot reproduce exactly (binary, dates, odd keys, NaN, -0) as an ordinary broadcast
// record. A text record does not carry the msgpack message: the JSON part of the text reads back
// (JSON.parse) as the data notepack would have decoded. It carries the websocket frame of the
// text too (engine.io's `4` and the text, framed as ws frames it), which the adapter hands
// engine.io as `wsPreEncodedFrame`: socket.io-adapter would otherwise encode the text to UTF-8
// and frame it on the JavaScript thread, for every broadcast.

const TEXT = Symbol("sioadapter.clientText");
const DATA = Symbol("sioadapter.data");
const FRAME = Symbol("sioadapter.frame");

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
  constructor(nsp, text, frame) {
    this.type = 2;
    this.nsp = nsp;
    this[TEXT] = text;
    this[FRAME] = frame;
  }

  get data() {
    if (!Object.prototype.hasOwnProperty.call(this, DATA)) this[DATA] = JSON.parse(this[TEXT].slice(this.nsp === "/" ? 1 : this.nsp.length + 2));
    return this[DATA];
  }

  set data(value) {
    this[DATA] = value;
    this[TEXT] = undefined;
    this[FRAME] = undefined;
  }
}

/** The length of the websocket frame at the start of `bytes` (RFC 6455 §5.2, unmasked). */
function frameLength(bytes) {
  const len = bytes[1] & 0x7f;
  if (len < 126) return 2 + len;
  if (len === 126) return 4 + bytes.readUInt16BE(2);
  return 10 + bytes.readUIntBE(4, 6);
}

/**
 * A `clientText` record (the websocket frame of the text, then the opts JSON) and the text
 * that came with it, as a packet and its opts.
 */
function readClientText(bytes, text, nsp) {
  const end = frameLength(bytes);
  return { opts: JSON.parse(bytes.toString("utf8", end)), packet: new TextPacket(nsp, text, bytes.subarray(0, end)) };
}

/**
 * The websocket frame the core made for `packet` (a TextPacket whose text is still its own),
 * ready for engine.io's `wsPreEncodedFrame`; undefined for any other packet.
 */
function preEncodedFrame(packet) {
  return packet instanceof TextPacket && packet.id === undefined && packet[TEXT] !== undefined ? packet[FRAME] : undefined;
}

module.exports = { isDefaultEncoder, textAwareEncoder, readClientText, preEncodedFrame };

'use strict';
// Helpers shared by the test process and the server child: IPC carries JSON, so Buffers travel as
// the marker `{ __buffer: [bytes] }`, anywhere in the arguments (top level or nested), and errors as
// plain objects.

const isPlainObject = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;

// Marker → Buffer, recursively (child side, before emitting).
function reviveArgs(value) {
  if (Array.isArray(value)) return value.map(reviveArgs);
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '__buffer') return Buffer.from(value.__buffer);
    return Object.fromEntries(keys.map((k) => [k, reviveArgs(value[k])]));
  }
  return value;
}

// Buffer / typed array → marker, recursively (parent side, before sending a command).
function encodeBuffers(value) {
  if (ArrayBuffer.isView(value)) return { __buffer: [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)] };
  if (value instanceof ArrayBuffer) return { __buffer: [...new Uint8Array(value)] };
  if (Array.isArray(value)) return value.map(encodeBuffers);
  if (isPlainObject(value)) return Object.fromEntries(Object.keys(value).map((k) => [k, encodeBuffers(value[k])]));
  return value;
}

function serializeError(err) {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack, code: err.code };
  return { name: 'NonError', message: String(err) };
}

function deserializeError(obj, context) {
  const err = new Error(`${context}: ${obj.message}`);
  err.name = obj.name;
  err.remoteStack = obj.stack;
  err.code = obj.code;
  return err;
}

module.exports = { reviveArgs, encodeBuffers, serializeError, deserializeError };

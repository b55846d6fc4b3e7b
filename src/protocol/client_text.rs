//! What a socket.io server with the default parser sends its clients for a broadcast received
//! as msgpack, made without JavaScript: socket.io-parser's text encoding of the packet
//! (`2`, the namespace and a comma unless it is `/`, then `JSON.stringify(data)`) of the value
//! notepack.io would decode, byte for byte.
//!
//! A Node node otherwise decodes every broadcast with notepack.io and encodes it again with
//! socket.io-parser, on its only JavaScript thread. When the text can be made exactly, the host
//! gets it ready (and the `opts` map as JSON text, cheap for `JSON.parse`); when it cannot, the
//! answer is `None` and the host decodes the message as before:
//! - binary anywhere (socket.io sends it as a binary packet with attachments) and every
//!   extension type (dates, `undefined`, notepack's ArrayBuffers);
//! - strings that are not UTF-8 (notepack would replace bytes with U+FFFD);
//! - maps whose keys are not strings, repeat, or include `__proto__` (JavaScript objects would
//!   drop or rename them);
//! - NaN, the infinities and -0, which JSON.stringify writes as `null` and `0`: the text is
//!   also what the host parses (`JSON.parse`) when something reads the packet's data, so it must
//!   read back as the value notepack decodes;
//! - packets other than a plain EVENT (`type` 2 with `data`, and `nsp`).
//!
//! What JSON.stringify does that is reproduced: numbers as `Number.prototype.toString` writes
//! them (`1e+21`, `1.5e-7`, `0.000001`), 64-bit integers rounded as notepack rounds them,
//! strings escaped as JSON.stringify escapes them, and object keys in JavaScript's property
//! order (array indices first, ascending).

use rmp::Marker;
use rmpv::Value;

use super::msgpack::Reader;
use crate::limits::{Limits, MAX_MESSAGE_DEPTH_CEILING};

/// What the clients are sent for one broadcast, and its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientText {
    /// The broadcast's `opts` map (`rooms`, `except`, `flags`) as JSON text.
    pub opts: String,
    /// socket.io-parser's encoding of the packet: `2`, `<nsp>,` unless the namespace is `/`,
    /// then the JSON text of `data`.
    pub text: String,
}

impl ClientText {
    /// The length of the [websocket frame](Self::write_websocket_frame) of the text.
    pub fn websocket_frame_len(&self) -> usize {
        let payload = self.text.len() + 1;
        payload
            + match payload {
                0..=125 => 2,
                126..=0xffff => 4,
                _ => 10,
            }
    }

    /// Appends to `out` the websocket frame that carries [`text`](Self::text) to a client: one
    /// unmasked, final text frame (RFC 6455 §5.2) whose payload is engine.io's `4` (message)
    /// then the text. It is what socket.io-adapter builds with ws's `Sender.frame` for
    /// `wsPreEncodedFrame`, so a host can write it to every websocket client as is.
    pub fn write_websocket_frame(&self, out: &mut Vec<u8>) {
        let len = self.text.len() + 1;
        out.push(0x81);
        match len {
            0..=125 => out.push(len as u8),
            126..=0xffff => {
                out.push(126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.push(b'4');
        out.extend_from_slice(self.text.as_bytes());
    }
}

/// socket.io-parser's text for the EVENT packet of broadcast `message` (msgpack `[uid, packet,
/// opts]`, already validated against the receive limits) in namespace `nsp`, with the `opts`
/// map as JSON text; `None` when the text cannot be made exactly (see the module documentation).
pub fn client_text(message: &[u8], nsp: &str) -> Option<ClientText> {
    let mut r = Reader::within(message, &Limits::ALREADY_CHECKED);
    if r.read_array_len().ok()? < 3 {
        return None;
    }
    r.skip_value().ok()?;
    let (mut event, mut data) = (false, None);
    for _ in 0..r.read_map_len().ok()? {
        match r.read_str().ok()? {
            "type" => event = r.read_value().ok()?.as_i64() == Some(2),
            "data" => {
                data = Some(r.clone());
                r.skip_value().ok()?;
            }
            "nsp" => {
                r.read_str().ok()?;
            }
            _ => return None,
        }
    }
    if !event {
        return None;
    }
    let mut text = String::with_capacity(message.len() + nsp.len() + 8);
    text.push('2');
    if nsp != "/" {
        text.push_str(nsp);
        text.push(',');
    }
    write_value(&mut data?, &mut text, 0)?;
    let mut opts = String::with_capacity(64);
    write_value(&mut r, &mut opts, 0)?;
    Some(ClientText { opts, text })
}

/// Writes the value at `r` as JSON.stringify writes what notepack.io decodes from it.
fn write_value(r: &mut Reader<'_>, out: &mut String, depth: usize) -> Option<()> {
    if depth > MAX_MESSAGE_DEPTH_CEILING {
        return None;
    }
    match r.peek_marker().ok()? {
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => write_string(out, r.read_str().ok()?),
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            out.push('[');
            for i in 0..r.read_array_len().ok()? {
                if i > 0 {
                    out.push(',');
                }
                write_value(r, out, depth + 1)?;
            }
            out.push(']');
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => write_object(r, out, depth)?,
        // Binary and extensions (dates, undefined, ArrayBuffers): left to JavaScript.
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => return None,
        Marker::FixExt1 | Marker::FixExt2 | Marker::FixExt4 | Marker::FixExt8 | Marker::FixExt16 | Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => return None,
        _ => match r.read_value().ok()? {
            Value::Nil => out.push_str("null"),
            Value::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
            // notepack reads 64-bit integers as `hi * 2 ** 32 + lo` in doubles: the integer,
            // rounded once, as `as f64` rounds it.
            Value::Integer(n) => write_number(out, n.as_f64()?)?,
            Value::F32(f) => write_number(out, f64::from(f))?,
            Value::F64(f) => write_number(out, f)?,
            _ => return None,
        },
    }
    Some(())
}

/// A map as a JavaScript object: string keys only, each once, never `__proto__`; written in
/// property order (array indices ascending, then the other keys as they came).
fn write_object(r: &mut Reader<'_>, out: &mut String, depth: usize) -> Option<()> {
    let len = r.read_map_len().ok()?;
    let mut entries: Vec<(Option<u32>, &str, Reader<'_>)> = Vec::with_capacity(len.min(64));
    for _ in 0..len {
        let key = r.read_str().ok()?;
        if key == "__proto__" || entries.iter().any(|(_, k, _)| *k == key) {
            return None;
        }
        entries.push((array_index(key), key, r.clone()));
        r.skip_value().ok()?;
    }
    if entries.iter().any(|(index, _, _)| index.is_some()) {
        entries.sort_by_key(|(index, _, _)| index.map_or((1, 0), |i| (0, i)));
    }
    out.push('{');
    for (i, (_, key, mut value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(&mut value, out, depth + 1)?;
    }
    out.push('}');
    Some(())
}

/// The array index a property key names (`0`, `1`, ... up to 2³² − 2, no leading zero).
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty() && key.len() <= 10 && key.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| key.parse::<u64>().ok()).flatten().filter(|i| *i <= 4_294_967_294).map(|i| i as u32)
}

/// True for the bytes JSON.stringify escapes in a well-formed string: `"`, `\` and the control
/// characters.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as JSON.stringify writes it: quoted, with `"` and `\` escaped, and the control
/// characters as \b \t \n \f \r or else \u00xx (lowercase). The bytes are checked 16 at a
/// time; runs without escapes (nearly all of a payload) are copied whole.
fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (offset, chunk) in bytes.chunks(16).enumerate().map(|(n, chunk)| (n * 16, chunk)) {
        // No early exit inside a chunk: the compiler checks its bytes at once.
        if !chunk.iter().fold(false, |any, &b| any | needs_escape(b)) {
            continue;
        }
        for (at, &b) in chunk.iter().enumerate().filter(|(_, &b)| needs_escape(b)).map(|(j, b)| (offset + j, b)) {
            // `at` is at an ASCII byte, so both slices end on character boundaries.
            out.push_str(&s[start..at]);
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x08 => out.push_str("\\b"),
                b'\t' => out.push_str("\\t"),
                b'\n' => out.push_str("\\n"),
                0x0c => out.push_str("\\f"),
                b'\r' => out.push_str("\\r"),
                _ => {
                    out.push_str("\\u00");
                    out.push(HEX[usize::from(b >> 4)] as char);
                    out.push(HEX[usize::from(b & 0xf)] as char);
                }
            }
            start = at + 1;
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_integer(out: &mut String, i: i64) {
    out.push_str(itoa::Buffer::new().format(i));
}

/// `JSON.stringify(x)` of a number, `Number.prototype.toString()`; `None` for NaN, the
/// infinities and -0, which JSON does not read back as themselves.
fn write_number(out: &mut String, x: f64) -> Option<()> {
    if !x.is_finite() || (x == 0.0 && x.is_sign_negative()) {
        return None;
    }
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        write_integer(out, x as i64);
        return Some(());
    }
    if x < 0.0 {
        out.push('-');
    }
    // The shortest digits that read back as `x` (ryu's, as JavaScript's), then laid out by
    // ECMAScript's Number::toString rules: `digits` × 10^(point − k).
    let mut ryu = ryu::Buffer::new();
    let shortest = ryu.format_finite(x.abs());
    let (mantissa, exponent) = shortest.split_once(['e', 'E']).unwrap_or((shortest, "0"));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut point = whole.len() as i64 + exponent.parse::<i64>().unwrap_or(0);
    let all = [whole, fraction].concat();
    let significant = all.trim_start_matches('0');
    point -= (all.len() - significant.len()) as i64;
    let digits = significant.trim_end_matches('0');
    let k = digits.len() as i64;
    if k <= point && point <= 21 {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = point - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        write_integer(out, e.abs());
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_websocket_frame_is_engine_io_s_message_in_one_final_text_frame() {
        let frame = |len: usize| {
            let mut out = Vec::new();
            ClientText { opts: String::new(), text: "x".repeat(len) }.write_websocket_frame(&mut out);
            out
        };
        assert_eq!(frame(3), [&[0x81, 4, b'4'][..], b"xxx"].concat());
        assert_eq!(frame(124)[..2], [0x81, 125]);
        assert_eq!(frame(125)[..5], [0x81, 126, 0, 126, b'4']);
        assert_eq!(frame(0xfffe)[..4], [0x81, 126, 0xff, 0xff]);
        assert_eq!(frame(0xffff)[..10], [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(frame(0xffff).len(), 10 + 0x10000);
        for len in [0, 124, 125, 0xfffe, 0xffff] {
            assert_eq!(ClientText { opts: String::new(), text: "x".repeat(len) }.websocket_frame_len(), frame(len).len(), "{len}");
        }
    }

    use super::*;

    fn number(x: f64) -> Option<String> {
        let mut out = String::new();
        write_number(&mut out, x).map(|()| out)
    }

    #[test]
    fn strings_are_escaped_as_json_stringify_escapes_them() {
        // serde_json escapes what JSON.stringify escapes in well-formed strings (checked by
        // test/client-text.test.js against the official adapter's texts).
        let mut cases: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        cases.extend(["", "plain", "é\"\\\n\u{1f}😀 tail", "\u{7f}\u{2028}\u{2029}"].map(str::to_owned));
        // An escape and multi-byte characters at every position around the 16-byte chunks.
        for at in 0..40 {
            cases.push(format!("{}\"{}", "a".repeat(at), "é".repeat(at % 7)));
            cases.push(format!("{}é\u{7}{}", "a".repeat(at), "z".repeat(40 - at)));
        }
        for s in cases {
            let mut out = String::new();
            write_string(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        // Each pair checked against node: `String(x)` / JSON.stringify.
        for (x, js) in [
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e-7, "1e-7"),
            (2.5e300, "2.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (9007199254740993.0, "9007199254740992"),
            (18446744073709552000.0, "18446744073709552000"),
            (f64::from(0.1f32), "0.10000000149011612"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123.456, "123.456"),
        ] {
            assert_eq!(number(x).as_deref(), Some(js), "{x:e}");
        }
        // Written by JSON.stringify as `null` and `0`, which do not read back as these.
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            assert_eq!(number(x), None, "{x:e}");
        }
    }

    fn msgpack(value: &rmpv::Value) -> Vec<u8> {
        crate::protocol::msgpack::to_vec(value)
    }

    fn broadcast(data: rmpv::Value, nsp: &str) -> Vec<u8> {
        use rmpv::Value;
        let packet = Value::Map(vec![("type".into(), 2.into()), ("data".into(), data), ("nsp".into(), nsp.into())]);
        let opts = Value::Map(vec![
            ("rooms".into(), Value::Array(vec!["r1".into(), 5.into()])),
            ("except".into(), Value::Array(vec![])),
            ("flags".into(), Value::Map(vec![("volatile".into(), true.into())])),
        ]);
        msgpack(&Value::Array(vec!["uid".into(), packet, opts]))
    }

    #[test]
    fn texts_are_socket_io_parser_s() {
        use rmpv::Value;
        let data = Value::Array(vec![
            "ev".into(),
            Value::Map(vec![
                ("b".into(), 1.into()),
                ("10".into(), "ten".into()),
                ("2".into(), Value::Nil),
                ("a".into(), Value::Array(vec![1.5.into(), false.into(), "\"q\"\n\u{1}é\u{2028}".into()])),
            ]),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::F32(0.1),
        ]);
        let ClientText { opts, text } = client_text(&broadcast(data.clone(), "/"), "/").unwrap();
        assert_eq!(opts, r#"{"rooms":["r1",5],"except":[],"flags":{"volatile":true}}"#);
        assert_eq!(
            text,
            "2[\"ev\",{\"2\":null,\"10\":\"ten\",\"b\":1,\"a\":[1.5,false,\"\\\"q\\\"\\n\\u0001é\u{2028}\"]},18446744073709552000,-9223372036854776000,0.10000000149011612]"
        );
        let text = client_text(&broadcast(data, "/admin"), "/admin").unwrap().text;
        assert!(text.starts_with("2/admin,[\"ev\","), "{text}");
    }

    #[test]
    fn what_javascript_must_decode_is_left_to_it() {
        use rmpv::Value;
        for data in [
            Value::Array(vec!["ev".into(), Value::Binary(vec![1, 2])]),
            Value::Array(vec!["ev".into(), Value::Ext(-1, vec![0; 4])]),
            Value::Array(vec!["ev".into(), Value::Map(vec![(1.into(), 2.into())])]),
            Value::Array(vec!["ev".into(), Value::Map(vec![("a".into(), 1.into()), ("a".into(), 2.into())])]),
            Value::Array(vec!["ev".into(), Value::Map(vec![("__proto__".into(), Value::Map(vec![]))])]),
            Value::Array(vec!["ev".into(), Value::Array(vec![1.into(), Value::F64(f64::NAN)])]),
        ] {
            assert_eq!(client_text(&broadcast(data.clone(), "/"), "/"), None, "{data}");
        }
        // -0 as a float64 (the project's and notepack's encoders write it as the integer 0).
        let mut negative_zero = broadcast(Value::Array(vec!["ev".into(), 1.5.into()]), "/");
        let float = 1.5f64.to_bits().to_be_bytes();
        let at = negative_zero.windows(9).position(|w| w[0] == 0xcb && w[1..] == float).unwrap();
        negative_zero[at + 1..at + 9].copy_from_slice(&(-0.0f64).to_bits().to_be_bytes());
        assert_eq!(client_text(&negative_zero, "/"), None);
        let mut bad_utf8 = broadcast(Value::Array(vec!["ev".into(), "xy".into()]), "/");
        let at = bad_utf8.windows(2).position(|w| w == b"xy").unwrap();
        bad_utf8[at] = 0xff;
        assert_eq!(client_text(&bad_utf8, "/"), None);
        // Another packet type, or a packet with an id: the JS path.
        let ack = msgpack(&Value::Array(vec!["u".into(), Value::Map(vec![("type".into(), 3.into()), ("data".into(), Value::Array(vec![]))]), Value::Map(vec![])]));
        assert_eq!(client_text(&ack, "/"), None);
        let with_id = msgpack(&Value::Array(vec![
            "u".into(),
            Value::Map(vec![("type".into(), 2.into()), ("data".into(), Value::Array(vec!["e".into()])), ("id".into(), 4.into())]),
            Value::Map(vec![]),
        ]));
        assert_eq!(client_text(&with_id, "/"), None);
        // Truncated anywhere: never a panic, never a text.
        let whole = broadcast(Value::Array(vec!["ev".into(), "x".repeat(300).into(), 1.25.into()]), "/");
        for end in 0..whole.len() {
            assert_eq!(client_text(&whole[..end], "/"), None, "{end}");
        }
    }
}

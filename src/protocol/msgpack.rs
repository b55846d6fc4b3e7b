//! MessagePack exactly as notepack.io 3 writes it, and a bounded reader.
//!
//! The official adapter encodes with notepack.io, whose choices differ from a generic msgpack
//! encoder in a few places that matter for byte-identity (see docs/protocol.md §8):
//! integral floats are written as integers, non-negative integers always use the unsigned
//! family, float32 is never produced. [`encode_value`] follows those rules.
//!
//! [`Reader`] reads untrusted bytes from Redis. It never allocates more than the input could
//! possibly hold (a length prefix claiming 4 GiB in a 20-byte payload is an error, not an
//! allocation), limits nesting depth, and never panics.

use rmp::Marker;
use rmpv::Value;

use super::ProtocolError;
use crate::limits::Limits;

/// Appends `value` to `out` the way notepack.io 3 would encode the equivalent JS value.
pub fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => {
            if let Some(u) = i.as_u64() {
                write_uint(out, u)
            } else if let Some(s) = i.as_i64() {
                write_int(out, s)
            }
        }
        Value::F32(f) => write_number(out, f64::from(*f)),
        Value::F64(f) => write_number(out, *f),
        Value::String(s) => match s.as_str() {
            Some(text) => write_str(out, text),
            // Invalid UTF-8 can only come from a decoded peer message: keep its bytes as they were.
            None => write_str_bytes(out, s.as_bytes()),
        },
        Value::Binary(b) => write_bin(out, b),
        Value::Array(items) => {
            write_array_len(out, items.len());
            for item in items {
                encode_value(out, item);
            }
        }
        Value::Map(entries) => {
            write_map_len(out, entries.len());
            for (k, v) in entries {
                encode_value(out, k);
                encode_value(out, v);
            }
        }
        Value::Ext(ty, data) => {
            // Writing into a Vec cannot fail.
            let _ = rmp::encode::write_ext_meta(out, data.len() as u32, *ty);
            out.extend_from_slice(data);
        }
    }
}

/// Encodes one value into a new buffer.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_value(&mut out, value);
    out
}

/// Converts JSON into a msgpack value as `notepack.encode(JSON.parse(text))` would see it.
pub fn from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(map.iter().map(|(k, v)| (Value::from(k.as_str()), from_json(v))).collect()),
    }
}

/// Converts a msgpack value into JSON as `JSON.stringify` writes what `notepack.decode` gives:
/// binary as a Node Buffer's JSON (`{"type":"Buffer","data":[bytes]}`), non-finite floats and
/// extensions as null, map keys as strings.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Nil | Value::Ext(..) => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => i.as_i64().map(Json::from).or_else(|| i.as_u64().map(Json::from)).unwrap_or(Json::Null),
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(bytes) => serde_json::json!({ "type": "Buffer", "data": bytes }),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

/// The official adapter's JSON `parser` (`{ encode: JSON.stringify, decode: JSON.parse }`)
/// encoding a message given in msgpack: the JSON text of the same value ([`to_json`]).
pub fn to_json_text(bytes: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    serde_json::to_vec(&to_json(&from_slice(bytes)?)).map_err(|_| ProtocolError::Shape("message not writable as JSON"))
}

/// A message that the official adapter's JSON `parser` encoded, as msgpack of the same value
/// ([`from_json`]), once checked against `limits`.
pub fn from_json_text(text: &[u8], limits: &Limits) -> Result<Vec<u8>, ProtocolError> {
    crate::protocol::request::check_json(text, limits)?;
    let json: serde_json::Value = serde_json::from_slice(text).map_err(|_| ProtocolError::Shape("not JSON text"))?;
    Ok(to_vec(&from_json(&json)))
}

/// Writes a JS number: integral finite values as integers, everything else as float64.
pub fn write_number(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() && f.fract() == 0.0 {
        if f >= 0.0 {
            // notepack wraps integral values ≥ 2^64 modulo 2^64.
            let wrapped = if f < 18_446_744_073_709_551_616.0 { f as u64 } else { (f % 18_446_744_073_709_551_616.0) as u64 };
            write_uint(out, wrapped);
        } else if f >= -9_223_372_036_854_775_808.0 {
            write_int(out, f as i64);
        } else {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
    } else {
        out.push(0xcb);
        out.extend_from_slice(&f.to_be_bytes());
    }
}

/// Writes a non-negative integer in the smallest unsigned form.
pub fn write_uint(out: &mut Vec<u8>, u: u64) {
    let _ = rmp::encode::write_uint(out, u);
}

/// Writes a negative (or any signed) integer the way notepack does: unsigned family for ≥ 0.
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        write_uint(out, i as u64);
    } else {
        let _ = rmp::encode::write_sint(out, i);
    }
}

/// Writes a UTF-8 string (fixstr, str8, str16 or str32).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_str_bytes(out, s.as_bytes());
}

fn write_str_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 0x100 {
        out.push(0xd9);
        out.push(len as u8);
    } else if len < 0x10000 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Writes a byte string as msgpack bin.
pub fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = rmp::encode::write_bin(out, bytes);
}

/// Writes an array header.
pub fn write_array_len(out: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_array_len(out, len as u32);
}

/// Writes a map header.
pub fn write_map_len(out: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_map_len(out, len as u32);
}

/// A cursor over untrusted msgpack bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values met so far.
    values: usize,
    /// Most values and deepest nesting accepted.
    max_values: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`, within the default [`Limits`].
    pub fn new(buf: &'a [u8]) -> Self {
        Self::within(buf, &Limits::default())
    }

    /// Starts reading at the beginning of `buf`; values and nesting beyond `limits` fail with
    /// [`ProtocolError::TooManyValues`] / [`ProtocolError::TooDeep`].
    pub fn within(buf: &'a [u8], limits: &Limits) -> Self {
        Self { buf, pos: 0, values: 0, max_values: limits.max_message_values, max_depth: limits.max_message_depth }
    }

    /// Byte offset of the next value.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been consumed.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Fails unless every byte has been consumed (notepack rejects trailing bytes too).
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes(self.buf.len() - self.pos))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(ProtocolError::Truncated)?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, ProtocolError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Looks at the next marker without consuming it.
    pub fn peek_marker(&self) -> Result<Marker, ProtocolError> {
        self.buf.get(self.pos).map(|b| Marker::from_u8(*b)).ok_or(ProtocolError::Truncated)
    }

    /// Reads an array header; the length is checked against the bytes left.
    pub fn read_array_len(&mut self) -> Result<usize, ProtocolError> {
        let len = match Marker::from_u8(self.byte()?) {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => self.be(2)? as usize,
            Marker::Array32 => self.be(4)? as usize,
            other => return Err(ProtocolError::unexpected("an array", other)),
        };
        self.check_items(len, 1)
    }

    /// Reads a map header; the length is checked against the bytes left.
    pub fn read_map_len(&mut self) -> Result<usize, ProtocolError> {
        let len = match Marker::from_u8(self.byte()?) {
            Marker::FixMap(n) => usize::from(n),
            Marker::Map16 => self.be(2)? as usize,
            Marker::Map32 => self.be(4)? as usize,
            other => return Err(ProtocolError::unexpected("a map", other)),
        };
        self.check_items(len, 2)
    }

    /// Every item needs at least one byte: a count larger than what is left is a lie.
    fn check_items(&self, len: usize, bytes_per_item: usize) -> Result<usize, ProtocolError> {
        if len.saturating_mul(bytes_per_item) > self.buf.len() - self.pos {
            Err(ProtocolError::Truncated)
        } else {
            Ok(len)
        }
    }

    /// Reads a string's raw bytes (not checked for UTF-8).
    pub fn read_str_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = match Marker::from_u8(self.byte()?) {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => self.be(1)? as usize,
            Marker::Str16 => self.be(2)? as usize,
            Marker::Str32 => self.be(4)? as usize,
            other => return Err(ProtocolError::unexpected("a string", other)),
        };
        self.take(len)
    }

    /// Reads a UTF-8 string.
    pub fn read_str(&mut self) -> Result<&'a str, ProtocolError> {
        std::str::from_utf8(self.read_str_bytes()?).map_err(|_| ProtocolError::InvalidUtf8)
    }

    /// Skips one complete value, validating its structure.
    pub fn skip_value(&mut self) -> Result<(), ProtocolError> {
        self.skip_nested(0)
    }

    /// Counts one more value; fails beyond the limits.
    fn enter(&mut self, depth: usize) -> Result<(), ProtocolError> {
        self.values += 1;
        if self.values > self.max_values {
            return Err(ProtocolError::TooManyValues(self.max_values));
        }
        if depth > self.max_depth {
            return Err(ProtocolError::TooDeep(self.max_depth));
        }
        Ok(())
    }

    fn skip_nested(&mut self, depth: usize) -> Result<(), ProtocolError> {
        self.enter(depth)?;
        let marker = self.peek_marker()?;
        match marker {
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = self.read_array_len()?;
                for _ in 0..n {
                    self.skip_nested(depth + 1)?;
                }
                Ok(())
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let n = self.read_map_len()?;
                for _ in 0..n * 2 {
                    self.skip_nested(depth + 1)?;
                }
                Ok(())
            }
            _ => self.read_scalar(marker).map(drop),
        }
    }

    /// Reads one complete value into an owned [`Value`].
    pub fn read_value(&mut self) -> Result<Value, ProtocolError> {
        self.read_nested(0)
    }

    fn read_nested(&mut self, depth: usize) -> Result<Value, ProtocolError> {
        self.enter(depth)?;
        let marker = self.peek_marker()?;
        match marker {
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = self.read_array_len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.read_nested(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let n = self.read_map_len()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.read_nested(depth + 1)?;
                    let v = self.read_nested(depth + 1)?;
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
            _ => self.read_scalar(marker),
        }
    }

    fn read_scalar(&mut self, marker: Marker) -> Result<Value, ProtocolError> {
        self.pos += 1;
        Ok(match marker {
            Marker::Null => Value::Nil,
            Marker::True => Value::Boolean(true),
            Marker::False => Value::Boolean(false),
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::U8 => Value::from(self.be(1)?),
            Marker::U16 => Value::from(self.be(2)?),
            Marker::U32 => Value::from(self.be(4)?),
            Marker::U64 => Value::from(self.be(8)?),
            Marker::I8 => Value::from(self.be(1)? as u8 as i8),
            Marker::I16 => Value::from(self.be(2)? as u16 as i16),
            Marker::I32 => Value::from(self.be(4)? as u32 as i32),
            Marker::I64 => Value::from(self.be(8)? as i64),
            Marker::F32 => Value::F32(f32::from_bits(self.be(4)? as u32)),
            Marker::F64 => Value::F64(f64::from_bits(self.be(8)?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                self.pos -= 1;
                let bytes = self.read_str_bytes()?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Value::from(s),
                    Err(_) => Value::String(rmpv::Utf8String::from(String::from_utf8_lossy(bytes).into_owned())),
                }
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = self.be(length_width(marker))? as usize;
                Value::Binary(self.take(n)?.to_vec())
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => {
                let n = self.be(length_width(marker))? as usize;
                self.ext(n)?
            }
            Marker::Reserved => return Err(ProtocolError::UnknownMarker(0xc1)),
            other => return Err(ProtocolError::unexpected("a scalar", other)),
        })
    }

    fn ext(&mut self, len: usize) -> Result<Value, ProtocolError> {
        let ty = self.byte()? as i8;
        Ok(Value::Ext(ty, self.take(len)?.to_vec()))
    }
}

/// Bytes of the length prefix after a bin/ext marker.
fn length_width(marker: Marker) -> usize {
    match marker {
        Marker::Bin8 | Marker::Ext8 => 1,
        Marker::Bin16 | Marker::Ext16 => 2,
        _ => 4,
    }
}

/// Decodes exactly one value spanning all of `bytes`, within the default [`Limits`].
pub fn from_slice(bytes: &[u8]) -> Result<Value, ProtocolError> {
    from_slice_within(bytes, &Limits::default())
}

/// Decodes exactly one value spanning all of `bytes`, within `limits`.
pub fn from_slice_within(bytes: &[u8], limits: &Limits) -> Result<Value, ProtocolError> {
    let mut reader = Reader::within(bytes, limits);
    let value = reader.read_value()?;
    reader.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn num(f: f64) -> String {
        let mut out = Vec::new();
        write_number(&mut out, f);
        hex(&out)
    }

    #[test]
    fn numbers_match_notepack_edge_cases() {
        let cases: &[(f64, &str)] = &[
            (0.0, "00"),
            (127.0, "7f"),
            (128.0, "cc80"),
            (255.0, "ccff"),
            (256.0, "cd0100"),
            (65535.0, "cdffff"),
            (65536.0, "ce00010000"),
            (-0.0, "00"),
            (4294967295.0, "ceffffffff"),
            (4294967296.0, "cf0000000100000000"),
            (9007199254740992.0, "cf0020000000000000"),
            (9223372036854775808.0, "cf8000000000000000"),
            (1e20, "cf6bc75e2d63100000"),
            (-1.0, "ff"),
            (-32.0, "e0"),
            (-33.0, "d0df"),
            (-128.0, "d080"),
            (-129.0, "d1ff7f"),
            (-32768.0, "d18000"),
            (-32769.0, "d2ffff7fff"),
            (-2147483648.0, "d280000000"),
            (-2147483649.0, "d3ffffffff7fffffff"),
            (1.5, "cb3ff8000000000000"),
            (f64::NAN, "cb7ff8000000000000"),
            (f64::INFINITY, "cb7ff0000000000000"),
            (f64::NEG_INFINITY, "cbfff0000000000000"),
            (0.1, "cb3fb999999999999a"),
        ];
        for (value, expected) in cases {
            assert_eq!(num(*value), *expected, "encoding {value}");
        }
    }

    #[test]
    fn strings_and_containers_match_notepack() {
        let s31 = "x".repeat(31);
        let s32 = "x".repeat(32);
        assert_eq!(hex(&to_vec(&Value::from("é"))), "a2c3a9");
        assert_eq!(hex(&to_vec(&Value::from("😀"))), "a4f09f9880");
        assert_eq!(&hex(&to_vec(&Value::from(s31.as_str())))[..2], "bf");
        assert_eq!(&hex(&to_vec(&Value::from(s32.as_str())))[..4], "d920");
        assert_eq!(&hex(&to_vec(&Value::from("x".repeat(256).as_str())))[..6], "da0100");
        assert_eq!(hex(&to_vec(&Value::Array(vec![1.into(), Value::Nil, Value::Nil]))), "9301c0c0");
        assert_eq!(hex(&to_vec(&Value::Binary(vec![1, 2, 3]))), "c403010203");
        assert_eq!(hex(&to_vec(&Value::Ext(-1, vec![0x39, 0x45, 0x79, 0x80]))), "d6ff39457980");
        assert_eq!(hex(&to_vec(&Value::Ext(-1, vec![0; 12]))), format!("c70cff{}", "00".repeat(12)));
        assert_eq!(hex(&to_vec(&Value::F64(2.0))), "02");
        assert_eq!(hex(&to_vec(&Value::F32(1.5))), "cb3ff8000000000000");
    }

    #[test]
    fn reader_round_trips_every_kind() {
        let value = Value::Map(vec![
            (Value::from("a"), Value::Array(vec![Value::from(-200), Value::F64(0.5), Value::Boolean(true)])),
            (Value::from("b"), Value::Binary(vec![9; 300])),
            (Value::from("c"), Value::Ext(-1, vec![1, 2, 3, 4, 5, 6, 7, 8])),
            (Value::from("d"), Value::from(u64::MAX)),
        ]);
        let bytes = to_vec(&value);
        assert_eq!(from_slice(&bytes).unwrap(), value);
    }

    #[test]
    fn reader_rejects_lies_and_garbage_without_allocating() {
        // str32 claiming 4 GiB
        assert_eq!(from_slice(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']), Err(ProtocolError::Truncated));
        // array32 claiming 4 billion items
        assert_eq!(from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), Err(ProtocolError::Truncated));
        // map32 claiming many entries
        assert_eq!(from_slice(&[0xdf, 0x7f, 0xff, 0xff, 0xff]), Err(ProtocolError::Truncated));
        assert_eq!(from_slice(&[0xc1]), Err(ProtocolError::UnknownMarker(0xc1)));
        assert_eq!(from_slice(&[]), Err(ProtocolError::Truncated));
        assert_eq!(from_slice(&[0x01, 0x02]), Err(ProtocolError::TrailingBytes(1)));
        let limits = Limits::default();
        let (max_depth, max_values) = (limits.max_message_depth, limits.max_message_values);
        let deep = vec![0x91; max_depth + 2];
        assert_eq!(from_slice(&deep), Err(ProtocolError::TooDeep(max_depth)));
        // An array of a million and one empty arrays (about 1 MB): too many values to decode.
        let mut many = vec![0xdd];
        many.extend_from_slice(&((max_values as u32).to_be_bytes()));
        many.extend(std::iter::repeat_n(0x90, max_values));
        assert_eq!(Reader::new(&many).skip_value(), Err(ProtocolError::TooManyValues(max_values)));
        assert_eq!(from_slice(&many), Err(ProtocolError::TooManyValues(max_values)));
        many[1..5].copy_from_slice(&((max_values as u32 - 1).to_be_bytes()));
        many.pop();
        assert!(Reader::new(&many).skip_value().is_ok(), "exactly max_message_values values are fine");
    }

    #[test]
    fn the_reader_keeps_to_the_limits_it_is_given() {
        let limits = Limits { max_message_values: 4, max_message_depth: 2, ..Limits::default() };
        // [[[]]]: three values, three levels (depth 0, 1, 2).
        assert!(from_slice_within(&[0x91, 0x91, 0x90], &limits).is_ok());
        assert_eq!(from_slice_within(&[0x91, 0x91, 0x91, 0x90], &limits), Err(ProtocolError::TooDeep(2)));
        // [1, 2, 3, 4]: five values.
        assert_eq!(Reader::within(&[0x94, 1, 2, 3, 4], &limits).skip_value(), Err(ProtocolError::TooManyValues(4)));
        assert!(Reader::within(&[0x93, 1, 2, 3], &limits).skip_value().is_ok());
    }
}

//! Every decoder of bytes received from Redis, fed with random and mutated messages: none may
//! panic (a panic in the receive path would cross into JS or C), whatever the input.
//! A deterministic xorshift generator keeps failures reproducible; SIO_FUZZ_CASES scales it.

use sioadapter::limits::Limits;
use sioadapter::protocol::request::{check_json, parse_request, parse_response};
use sioadapter::protocol::{msgpack, Broadcast, BroadcastOptions, BroadcastRef, OptsLayout, Packet, Room};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut opts = BroadcastOptions { rooms: vec![Room::from("r1"), Room::Number(7)], except: vec![Room::from("x")], ..Default::default() };
    opts.flags.set("volatile", true).set("timeout", 1000);
    let data = vec![
        "s".into(),
        1.into(),
        (-5).into(),
        rmpv::Value::F64(2.5),
        rmpv::Value::Binary(vec![1, 2, 3]),
        rmpv::Value::Map(vec![("k".into(), rmpv::Value::Array(vec![rmpv::Value::Nil]))]),
        rmpv::Value::Ext(-1, vec![0; 8]),
    ];
    let broadcast = Broadcast { uid: "AAAAAA".into(), packet: Packet::event("/", "ev", data), opts, layout: OptsLayout::Adapter }.encode();
    let mut packet_and_opts = vec![0x92];
    packet_and_opts.extend_from_slice(&broadcast[8..]);
    vec![
        broadcast,
        sioadapter::protocol::request::broadcast_with_ack_request("AAAAAA", "req001", &packet_and_opts).unwrap(),
        br#"{"uid":"AAAAAA","requestId":"r","type":5,"opts":{"rooms":["a",1],"except":[]}}"#.to_vec(),
        br#"{"uid":"AAAAAA","type":2,"opts":{"rooms":[],"except":["b"]},"rooms":["j"]}"#.to_vec(),
        br#"{"requestId":"x","type":2,"sid":"abc","room":"r"}"#.to_vec(),
        br#"{"uid":"A","requestId":"r","type":6,"data":["ev",{"a":[1,2]}]}"#.to_vec(),
        br#"{"requestId":"r","sockets":[{"id":"s","handshake":{},"rooms":["s"],"data":{}}]}"#.to_vec(),
        br#"{"type":8,"requestId":"r","clientCount":3}"#.to_vec(),
        sioadapter::protocol::request::broadcast_ack_response("r", &[0xa2, b'o', b'k']).unwrap(),
    ]
}

fn decode_everything(bytes: &[u8]) {
    let _ = msgpack::from_slice(bytes);
    if let Ok(parsed) = BroadcastRef::parse(bytes) {
        let _ = parsed.to_owned();
        let _ = parsed.targets_any(|_| false);
    }
    // The defaults, and limits small enough for random input to reach them.
    let tight = Limits { max_message_values: 8, max_message_depth: 3, ..Limits::default() };
    for limits in [Limits::default(), tight] {
        let _ = parse_request(bytes, &limits);
        let _ = parse_response(bytes, &limits);
        let _ = check_json(bytes, &limits);
        let _ = BroadcastRef::parse_within(bytes, &limits);
    }
}

#[test]
fn no_decoder_panics_on_random_or_mutated_input() {
    let cases: usize = std::env::var("SIO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seeds = seeds();
    for seed in &seeds {
        decode_everything(seed);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let interesting = [
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc6, 0xc7, 0xc9, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, b'{', b'}',
        b'"', b'[',
    ];
    for _ in 0..cases {
        let mut bytes = match rng.below(4) {
            0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            _ => seeds[rng.below(seeds.len())].clone(),
        };
        for _ in 0..=rng.below(4) {
            if bytes.is_empty() {
                bytes.push(interesting[rng.below(interesting.len())]);
                continue;
            }
            let at = rng.below(bytes.len());
            match rng.below(5) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] = interesting[rng.below(interesting.len())],
                2 => bytes.truncate(at),
                3 => bytes.insert(at, interesting[rng.below(interesting.len())]),
                _ => {
                    let tail = bytes[at..].to_vec();
                    bytes.extend_from_slice(&tail);
                }
            }
        }
        decode_everything(&bytes);
    }
}

#[test]
fn huge_length_prefixes_and_deep_nesting_are_rejected_cheaply() {
    for prefix in [[0xdbu8, 0xff, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xc9, 0xff, 0xff, 0xff, 0xff]]
    {
        let mut bytes = vec![0x93];
        bytes.extend_from_slice(&prefix);
        bytes.extend_from_slice(b"tiny");
        assert!(BroadcastRef::parse(&bytes).is_err());
        assert!(msgpack::from_slice(&bytes[1..]).is_err());
    }
    let deep = vec![0x91; 100_000];
    assert!(msgpack::from_slice(&deep).is_err());
    assert!(BroadcastRef::parse(&deep).is_err());
}

//! Server uids and request ids: six characters, as the official adapter's `uid2(6)` makes them,
//! or sixteen hex characters, as socket.io's `ClusterAdapter` (the sharded adapter) makes them.

/// The 64 characters `uid2` draws from; a random byte modulo 64 picks one.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A fresh 6-character id from the official alphabet, for a server uid or a request id.
pub fn new_uid() -> String {
    random_bytes::<6>().iter().map(|b| ALPHABET[usize::from(b % 64)] as char).collect()
}

/// A fresh 16-character lowercase hex id, as socket.io's `ClusterAdapter` makes its server uids
/// and request ids (`randomBytes(8).toString("hex")`): the ids of the sharded protocol.
pub fn new_cluster_uid() -> String {
    random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

/// `N` random bytes from the OS, or, without OS randomness, from the clock and a counter: still
/// unique per process.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mixed = (nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)).to_le_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = mixed[i % mixed.len()];
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_have_six_chars_from_the_official_alphabet() {
        for _ in 0..100 {
            let uid = new_uid();
            assert_eq!(uid.len(), 6);
            assert!(uid.bytes().all(|b| ALPHABET.contains(&b)), "{uid}");
        }
        assert_ne!(new_uid(), new_uid());
    }

    #[test]
    fn cluster_uids_have_sixteen_lowercase_hex_chars() {
        let uid = new_cluster_uid();
        assert_eq!(uid.len(), 16);
        assert!(uid.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{uid}");
        assert_ne!(new_cluster_uid(), new_cluster_uid());
    }
}

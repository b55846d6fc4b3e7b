//! Server uids and request ids: six characters, as the official adapter's `uid2(6)` makes them.

/// The 64 characters `uid2` draws from; a random byte modulo 64 picks one.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A fresh 6-character id from the official alphabet, for a server uid or a request id.
pub fn new_uid() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock and a counter, still unique per process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mixed = nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        bytes.copy_from_slice(&mixed.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| ALPHABET[usize::from(b % 64)] as char).collect()
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
}

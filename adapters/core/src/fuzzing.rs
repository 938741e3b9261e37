//! The entry point the cargo-fuzz target (`fuzz/fuzz_targets/native.rs`) and the corpus replay test share, so
//! that CI on stable checks every kept input through exactly the code the fuzzer ran. Compiled only for tests and
//! the `fuzzing` feature.

use protofuse_model::Envelope;

use crate::native;

/// Runs one fuzz input through [`native::decode`]: the body of `POST /v1/messages` (and of JSON-RPC
/// `messages.send`'s params). An input starting with byte `0x01` carries an `Idempotency-Key` header first, up
/// to the first newline. Panics only where an invariant breaks: never on hostile input.
pub fn native(data: &[u8]) {
    let (key, body) = match data.split_first() {
        Some((1, rest)) => {
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let (key, body) = rest.split_at(split);
            (Some(String::from_utf8_lossy(key)), body.get(1..).unwrap_or_default())
        }
        _ => (None, data),
    };
    let Ok(envelope) = native::decode(body, key.as_deref()) else {
        return;
    };
    if let Err(e) = envelope.validate() {
        panic!("a decoded envelope breaks a model rule: {e}");
    }
    // The store keeps the envelope as JSON and reads it back: what was accepted must survive that unchanged.
    let stored = serde_json::to_vec(&envelope).unwrap_or_default();
    match serde_json::from_slice::<Envelope>(&stored) {
        Ok(read) => assert_eq!(read, envelope, "the stored form reads back differently"),
        Err(e) => panic!(
            "the stored form does not read back ({e}): {}",
            String::from_utf8_lossy(&stored)
        ),
    }
    if key.is_some() {
        // A key chosen by the caller makes the decode deterministic: a retry must map to the same message.
        let again = native::decode(body, key.as_deref()).map(|e| e.idempotency_key);
        assert_eq!(
            again.ok(),
            Some(envelope.idempotency_key),
            "the same key derived twice differs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the kept corpus (seeds and minimised findings) through the fuzz target's entry, on stable.
    #[test]
    fn kept_corpus_replays_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/native");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            native(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 8, "{} holds only {replayed} inputs", dir.display());
    }
}

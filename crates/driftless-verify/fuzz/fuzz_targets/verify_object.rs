//! Fuzz `verify_object` (and `verify_revision`, which also parses tags) with real trusted keys,
//! so inputs that look like signed objects reach the OpenPGP and SSH verifiers. Seed the corpus
//! with `../tests/fixtures/*.txt`. Must never panic.
#![no_main]

use std::sync::OnceLock;

use driftless_verify::{Mode, TrustedKeys, verify_object, verify_revision};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static TrustedKeys {
    static KEYS: OnceLock<TrustedKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        TrustedKeys::parse(&[
            include_str!("../../tests/fixtures/pgp-key.asc").to_string(),
            include_str!("../../tests/fixtures/ssh-key.pub").to_string(),
        ])
        .expect("fixture keys parse")
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let _ = verify_object(data, keys);
    // the same bytes as a commit with itself as its only tag
    let _ = verify_revision(Mode::Both, data, &[("v1".to_string(), data.to_vec())], keys);
    // and as trusted-key text
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TrustedKeys::parse(&[text.to_string()]);
    }
});

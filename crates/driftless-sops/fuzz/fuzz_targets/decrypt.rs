//! Fuzzes `decrypt` and `is_encrypted` for every format: no input may panic.
//! Run with `cargo +nightly fuzz run decrypt` from crates/driftless-sops.
#![no_main]

use std::sync::OnceLock;

use driftless_sops::{Format, Keys, decrypt, is_encrypted};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut k = Keys::new();
        // The published sops functional-test key, so that fuzzed variants of the fixtures get past the data key.
        let _ = k.add_pgp_secret_key(include_str!("../../tests/fixtures/sops/sops_functional_tests_key.asc"));
        k
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else { return };
    let format = match selector % 4 {
        0 => Format::Yaml,
        1 => Format::Json,
        2 => Format::Dotenv,
        _ => Format::Binary,
    };
    let _ = is_encrypted(text, format);
    let _ = decrypt(text, format, keys());
});

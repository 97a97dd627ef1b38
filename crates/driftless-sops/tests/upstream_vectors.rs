//! Decrypts files published in the sops repository (see tests/fixtures/sops/README.md)
//! with the functional-test PGP key: the strongest check that we follow the real format.

use driftless_sops::{Format, Keys, SopsError, decrypt, is_encrypted};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sops/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap()
}

fn keys() -> Keys {
    let mut k = Keys::new();
    let n = k
        .add_pgp_secret_key(&String::from_utf8(fixture("sops_functional_tests_key.asc")).unwrap())
        .unwrap();
    assert!(n >= 1);
    k
}

fn dec(name: &str, format: Format) -> String {
    let text = fixture(name);
    assert!(is_encrypted(&text, format), "{name} should be detected as encrypted");
    let out = decrypt(&text, format, &keys()).unwrap_or_else(|e| panic!("{name}: {e}"));
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn example_yaml() {
    let out = dec("example.yaml", Format::Yaml);
    let v: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(v["myapp1"], "t00m4nys3cr3tzupdated");
    assert_eq!(v["app2"]["db"]["user"], "eve");
    assert_eq!(v["app2"]["db"]["password"], "c4r1b0u");
    assert!(
        v["app2"]["key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
    );
    assert_eq!(v["number"], 1234568000.0);
    assert_eq!(v["an_array"][0], "secretuser1");
    assert_eq!(v["somebooleans"][0], true);
    assert_eq!(v["somebooleans"][1], false);
    assert_eq!(v["this"]["is"]["a"]["nested"]["value"], "with something secret in it");
    assert!(v.get("sops").is_none());
    assert!(out.contains("remain in clear text"));
}

#[test]
fn example_json() {
    let out = dec("example.json", Format::Json);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["firstName"], "John");
    assert_eq!(v["address"]["city"], "New York");
    assert_eq!(v["anEmptyValue"], "");
    assert!(v.get("sops").is_none());
}

#[test]
fn example_txt_binary() {
    let out = dec("example.txt", Format::Binary);
    assert!(!out.is_empty());
    assert!(!out.contains("ENC["));
}

#[test]
fn functional_test_formats() {
    for (name, format) in [
        ("format.enc.yaml", Format::Yaml),
        ("format.enc.json", Format::Json),
        ("format.enc.env", Format::Dotenv),
    ] {
        let out = dec(name, format);
        assert!(out.contains("bar"), "{name}: {out}");
        assert!(!out.contains("ENC["), "{name}: {out}");
    }
}

#[test]
fn encrypted_yaml_comments_are_tolerated() {
    let out = dec("comments.enc.yaml", Format::Yaml);
    let v: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(v["lorem"], "ipsum");
    assert_eq!(v["dolor"], "sit");
}

#[test]
fn file_without_mac_is_rejected() {
    let text = fixture("no_mac.yaml");
    assert!(!is_encrypted(&text, Format::Yaml));
    let err = decrypt(&text, Format::Yaml, &keys()).unwrap_err();
    assert!(matches!(err, SopsError::MacMismatch), "{err:?}");
}

#[test]
fn file_with_two_pgp_recipients() {
    let out = dec("multiple_keys.yaml", Format::Yaml);
    assert!(!out.contains("ENC["), "{out}");
}

#[test]
fn without_the_key_nothing_decrypts() {
    let err = decrypt(&fixture("example.yaml"), Format::Yaml, &Keys::new()).unwrap_err();
    assert!(matches!(err, SopsError::NoMatchingKey { .. }), "{err:?}");
}

//! `reencrypt` (sops edit semantics) and `encryption_info`.

use std::sync::OnceLock;

use driftless_sops::{
    EncryptOptions, Format, Keys, SopsError, decrypt, encrypt, encryption_info, is_encrypted, reencrypt,
};

const SECRET: &str = "s3cr3t-PLAINTEXT-marker";

fn identity() -> &'static age::x25519::Identity {
    static ID: OnceLock<age::x25519::Identity> = OnceLock::new();
    ID.get_or_init(age::x25519::Identity::generate)
}

fn other_identity() -> &'static age::x25519::Identity {
    static ID: OnceLock<age::x25519::Identity> = OnceLock::new();
    ID.get_or_init(age::x25519::Identity::generate)
}

fn keys_for(id: &age::x25519::Identity) -> Keys {
    use age::secrecy::ExposeSecret;
    let mut k = Keys::new();
    k.add_age_identities(id.to_string().expose_secret()).unwrap();
    k
}

fn yaml(text: &[u8]) -> serde_json::Value {
    serde_saphyr::from_slice(text).unwrap()
}

#[test]
fn reencrypt_keeps_recipients_rule_and_data_key() {
    let opts = EncryptOptions {
        age_recipients: vec![
            identity().to_public().to_string(),
            other_identity().to_public().to_string(),
        ],
        encrypted_regex: Some("^(data|stringData)$".into()),
        ..Default::default()
    };
    let plain = format!("kind: Secret\nmetadata:\n    name: db\nstringData:\n    password: {SECRET}\n");
    let enc = encrypt(plain.as_bytes(), Format::Yaml, &opts).unwrap();
    let info = encryption_info(&enc, Format::Yaml).unwrap();
    assert_eq!(info.age_recipients, opts.age_recipients);
    assert_eq!(info.encrypted_regex.as_deref(), Some("^(data|stringData)$"));
    assert_eq!(info.unencrypted_suffix, None);
    assert!(info.pgp_fingerprints.is_empty());

    let edited = "kind: Secret\nmetadata:\n    name: db\nstringData:\n    password: changed-value\n    user: admin\n";
    let re = reencrypt(&enc, edited.as_bytes(), Format::Yaml, &keys_for(identity())).unwrap();
    assert!(is_encrypted(&re, Format::Yaml));
    let text = String::from_utf8(re.clone()).unwrap();
    assert!(!text.contains("changed-value") && !text.contains("admin"), "{text}");
    assert!(
        text.contains("name: db"),
        "the rule still leaves metadata in clear: {text}"
    );
    let info2 = encryption_info(&re, Format::Yaml).unwrap();
    assert_eq!(info2.age_recipients, info.age_recipients);
    assert_eq!(info2.encrypted_regex, info.encrypted_regex);
    // The key stanzas are carried over unchanged: the same data key.
    let stanzas = |t: &[u8]| yaml(t)["sops"]["age"].clone();
    assert_eq!(stanzas(&enc), stanzas(&re));
    // Both recipients can read the new version.
    for id in [identity(), other_identity()] {
        let out = decrypt(&re, Format::Yaml, &keys_for(id)).unwrap();
        assert_eq!(yaml(&out)["stringData"]["password"], "changed-value");
        assert_eq!(yaml(&out)["stringData"]["user"], "admin");
    }
}

#[test]
fn reencrypt_all_formats() {
    let opts = EncryptOptions {
        age_recipients: vec![identity().to_public().to_string()],
        ..Default::default()
    };
    let keys = keys_for(identity());
    let cases: [(Format, String, &str); 4] = [
        (
            Format::Json,
            format!("{{\"a\": \"{SECRET}\"}}"),
            "{\"a\": \"new\", \"b\": 2}",
        ),
        (Format::Dotenv, format!("# c\nA={SECRET}\n"), "# c2\nA=new\nB=2\n"),
        (Format::Binary, format!("raw {SECRET}\n"), "raw new\n"),
        (Format::Yaml, format!("a: {SECRET}\n---\nb: 1\n"), "a: new\n---\nb: 2\n"),
    ];
    for (format, plain, edited) in cases {
        let enc = encrypt(plain.as_bytes(), format, &opts).unwrap();
        let re = reencrypt(&enc, edited.as_bytes(), format, &keys).unwrap();
        assert!(!String::from_utf8_lossy(&re).contains("new"), "{format:?}");
        let out = decrypt(&re, format, &keys).unwrap();
        match format {
            Format::Binary | Format::Dotenv => assert_eq!(String::from_utf8_lossy(&out), edited, "{format:?}"),
            Format::Json => {
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(v, serde_json::json!({"a": "new", "b": 2}));
            }
            Format::Yaml => assert_eq!(String::from_utf8_lossy(&out), "a: new\n---\nb: 2\n"),
        }
    }
}

#[test]
fn reencrypt_refuses_wrong_key_tampering_and_bad_input() {
    let opts = EncryptOptions {
        age_recipients: vec![identity().to_public().to_string()],
        ..Default::default()
    };
    let enc = encrypt(format!("a: {SECRET}\nb: x\n").as_bytes(), Format::Yaml, &opts).unwrap();
    let err = reencrypt(&enc, b"a: 1\n", Format::Yaml, &keys_for(other_identity())).unwrap_err();
    assert!(matches!(err, SopsError::NoMatchingKey { .. }), "{err}");

    // Swap two encrypted values: the MAC (and the per-value authentication) must catch it.
    let text = String::from_utf8(enc.clone()).unwrap();
    let v = yaml(&enc);
    let (a, b) = (v["a"].as_str().unwrap(), v["b"].as_str().unwrap());
    let swapped = text.replacen(a, "@@A@@", 1).replacen(b, a, 1).replacen("@@A@@", b, 1);
    assert!(reencrypt(swapped.as_bytes(), b"a: 1\n", Format::Yaml, &keys_for(identity())).is_err());

    let err = reencrypt(&enc, b"a: [unclosed\n", Format::Yaml, &keys_for(identity())).unwrap_err();
    assert!(matches!(err, SopsError::Parse { .. }), "{err}");
    let err = reencrypt(&enc, &enc, Format::Yaml, &keys_for(identity())).unwrap_err();
    assert!(matches!(err, SopsError::AlreadyEncrypted), "{err}");
    let err = reencrypt(b"a: 1\n", b"a: 2\n", Format::Yaml, &keys_for(identity())).unwrap_err();
    assert!(matches!(err, SopsError::NotEncrypted), "{err}");
    assert!(matches!(
        encryption_info(b"a: 1\n", Format::Yaml),
        Err(SopsError::NotEncrypted)
    ));
}

#[test]
fn encryption_info_reads_upstream_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sops");
    let text = std::fs::read(dir.join("example.yaml")).unwrap();
    let info = encryption_info(&text, Format::Yaml).unwrap();
    assert_eq!(info.pgp_fingerprints.len(), 2);
    assert_eq!(info.unencrypted_suffix.as_deref(), Some("_unencrypted"));
    assert!(info.age_recipients.is_empty());
    assert!(!info.version.is_empty() && !info.lastmodified.is_empty());
}

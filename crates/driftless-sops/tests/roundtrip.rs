//! Round trips, interoperability with the real `age` and `gpg` CLIs, tampering and hostile input.

use std::io::Write;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;

use driftless_sops::{EncryptOptions, Format, Keys, SopsError, decrypt, encrypt, is_encrypted};

const SECRET: &str = "s3cr3t-PLAINTEXT-marker";

const YAML: &str = "\
apiVersion: v1
kind: Secret
data:
    password: s3cr3t-PLAINTEXT-marker
    port: 5432
    ratio: 1.5
    enabled: true
    empty: ''
    nothing: null
    list:
        - one
        - 2
        - nested: s3cr3t-PLAINTEXT-marker
    quoted_number: '123'
    multi: |
        line one
        line two
comment_unencrypted: visible
";

const JSON: &str = r#"{
  "zeta": "s3cr3t-PLAINTEXT-marker",
  "alpha": {"n": 42, "f": 0.25, "b": false, "arr": [1, "two", null], "deep": {"x": "y"}},
  "public_unencrypted": "visible",
  "big": 18446744073709551615
}"#;

const DOTENV: &str = "# a comment\nDB_PASSWORD=s3cr3t-PLAINTEXT-marker\nMULTI=a\\nb\nEMPTY=\nURL=postgres://x?y=z\n";

fn age_identity() -> &'static age::x25519::Identity {
    static ID: OnceLock<age::x25519::Identity> = OnceLock::new();
    ID.get_or_init(age::x25519::Identity::generate)
}

fn age_keys() -> Keys {
    let mut k = Keys::new();
    use age::secrecy::ExposeSecret;
    let text = format!(
        "# created: now\n# public key: {}\n{}\n",
        age_identity().to_public(),
        age_identity().to_string().expose_secret()
    );
    assert_eq!(k.add_age_identities(&text).unwrap(), 1);
    k
}

fn age_opts() -> EncryptOptions {
    EncryptOptions {
        age_recipients: vec![age_identity().to_public().to_string()],
        ..Default::default()
    }
}

fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// An OpenPGP key pair: from the real gpg when installed (ed25519 + cv25519), else the sops test key (RSA).
struct Pgp {
    secret: String,
    public: String,
    home: Option<tempfile::TempDir>,
}

fn gpg(home: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn pgp_key() -> &'static Pgp {
    static KEY: OnceLock<Pgp> = OnceLock::new();
    KEY.get_or_init(|| {
        if have("gpg") {
            let home = tempfile::tempdir().unwrap();
            let h = home.path();
            gpg(
                h,
                &[
                    "--quick-gen-key",
                    "Driftless Test <test@example.invalid>",
                    "ed25519",
                    "cert,sign",
                    "never",
                ],
                None,
            );
            let fp_out = gpg(h, &["--with-colons", "--list-keys"], None);
            let listing = String::from_utf8(fp_out.stdout).unwrap();
            let fp = listing
                .lines()
                .find(|l| l.starts_with("fpr:"))
                .unwrap()
                .split(':')
                .nth(9)
                .unwrap()
                .to_string();
            gpg(h, &["--quick-add-key", &fp, "cv25519", "encr", "never"], None);
            let secret = String::from_utf8(gpg(h, &["--armor", "--export-secret-keys"], None).stdout).unwrap();
            let public = String::from_utf8(gpg(h, &["--armor", "--export"], None).stdout).unwrap();
            Pgp {
                secret,
                public,
                home: Some(home),
            }
        } else {
            eprintln!("gpg not installed: using the sops functional-test key, gpg interop checks skipped");
            let secret = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sops/sops_functional_tests_key.asc"
            ))
            .unwrap();
            use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
            let (sk, _) = SignedSecretKey::from_armor_single(secret.as_bytes()).unwrap();
            let public = SignedPublicKey::from(sk).to_armored_string(Default::default()).unwrap();
            Pgp {
                secret,
                public,
                home: None,
            }
        }
    })
}

fn pgp_keys() -> Keys {
    let mut k = Keys::new();
    assert!(k.add_pgp_secret_key(&pgp_key().secret).unwrap() >= 1);
    k
}

fn pgp_opts() -> EncryptOptions {
    EncryptOptions {
        pgp_public_keys: vec![pgp_key().public.clone()],
        ..Default::default()
    }
}

fn yaml_value(text: &[u8]) -> serde_json::Value {
    serde_saphyr::from_slice(text).unwrap()
}

fn sops_meta(enc: &[u8], format: Format) -> serde_json::Value {
    match format {
        Format::Yaml => yaml_value(enc)["sops"].clone(),
        _ => serde_json::from_slice::<serde_json::Value>(enc).unwrap()["sops"].clone(),
    }
}

#[test]
fn yaml_round_trip_age() {
    let enc = encrypt(YAML.as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let enc_text = String::from_utf8(enc.clone()).unwrap();
    assert!(!enc_text.contains(SECRET), "{enc_text}");
    assert!(enc_text.contains("comment_unencrypted: visible"));
    assert!(is_encrypted(&enc, Format::Yaml));
    assert!(!is_encrypted(YAML.as_bytes(), Format::Yaml));
    let meta = sops_meta(&enc, Format::Yaml);
    assert_eq!(meta["unencrypted_suffix"], "_unencrypted");
    assert!(
        meta["age"][0]["enc"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    );
    assert!(meta["mac"].as_str().unwrap().starts_with("ENC[AES256_GCM,data:"));
    // type tags as sops writes them
    let v = yaml_value(&enc);
    assert!(v["data"]["port"].as_str().unwrap().ends_with("type:int]"));
    assert!(v["data"]["ratio"].as_str().unwrap().ends_with("type:float]"));
    assert!(v["data"]["enabled"].as_str().unwrap().ends_with("type:bool]"));
    assert_eq!(v["data"]["empty"], "");
    assert!(v["data"]["nothing"].is_null());

    let plain = decrypt(&enc, Format::Yaml, &age_keys()).unwrap();
    assert_eq!(yaml_value(&plain), yaml_value(YAML.as_bytes()));
    // key order is preserved
    let text = String::from_utf8(plain.to_vec()).unwrap();
    let order: Vec<usize> = ["apiVersion", "kind", "data", "comment_unencrypted"]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn yaml_multi_document() {
    let src = "a: s3cr3t-PLAINTEXT-marker\n---\nb: 2\n";
    let enc = encrypt(src.as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let plain = decrypt(&enc, Format::Yaml, &age_keys()).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(std::str::from_utf8(&plain).unwrap()).unwrap();
    assert_eq!(
        docs,
        vec![serde_json::json!({"a": SECRET}), serde_json::json!({"b": 2})]
    );
}

#[test]
fn json_round_trip_age_and_pgp() {
    let mut opts = age_opts();
    opts.pgp_public_keys = pgp_opts().pgp_public_keys;
    let enc = encrypt(JSON.as_bytes(), Format::Json, &opts).unwrap();
    assert!(!String::from_utf8_lossy(&enc).contains(SECRET));
    let meta = sops_meta(&enc, Format::Json);
    assert_eq!(meta["pgp"][0]["fp"].as_str().unwrap().len(), 40);
    assert!(
        meta["pgp"][0]["enc"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PGP MESSAGE-----")
    );
    let expect: serde_json::Value = serde_json::from_str(JSON).unwrap();
    for keys in [age_keys(), pgp_keys()] {
        let plain = decrypt(&enc, Format::Json, &keys).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(got["zeta"], expect["zeta"]);
        assert_eq!(got["alpha"], expect["alpha"]);
        assert_eq!(got["public_unencrypted"], "visible");
        assert_eq!(got["big"].as_f64().unwrap(), 18446744073709551615.0);
        let text = String::from_utf8(plain.to_vec()).unwrap();
        assert!(text.find("zeta").unwrap() < text.find("alpha").unwrap(), "key order");
    }
}

#[test]
fn dotenv_round_trip() {
    for (opts, keys) in [(age_opts(), age_keys()), (pgp_opts(), pgp_keys())] {
        let enc = encrypt(DOTENV.as_bytes(), Format::Dotenv, &opts).unwrap();
        let text = String::from_utf8(enc.clone()).unwrap();
        assert!(!text.contains(SECRET) && !text.contains("a comment"), "{text}");
        assert!(text.contains("\nDB_PASSWORD=ENC[AES256_GCM,"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("sops_mac=ENC[")), "{text}");
        assert!(text.lines().any(|l| l == "sops_version=3.10.2"), "{text}");
        assert!(text.contains("sops_unencrypted_suffix=_unencrypted"));
        assert!(is_encrypted(&enc, Format::Dotenv));
        let plain = decrypt(&enc, Format::Dotenv, &keys).unwrap();
        assert_eq!(std::str::from_utf8(&plain).unwrap(), DOTENV);
    }
}

#[test]
fn binary_round_trip() {
    let data: Vec<u8> = (0..=255u8).chain(SECRET.bytes()).collect(); // not UTF-8
    for (opts, keys) in [(age_opts(), age_keys()), (pgp_opts(), pgp_keys())] {
        let enc = encrypt(&data, Format::Binary, &opts).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&enc).unwrap();
        assert!(v["data"].as_str().unwrap().starts_with("ENC[AES256_GCM,"));
        assert!(is_encrypted(&enc, Format::Binary));
        let plain = decrypt(&enc, Format::Binary, &keys).unwrap();
        assert_eq!(&plain[..], &data[..]);
    }
    let text = b"plain text file\nwith lines\n";
    let enc = encrypt(text, Format::Binary, &age_opts()).unwrap();
    assert_eq!(&decrypt(&enc, Format::Binary, &age_keys()).unwrap()[..], text);
}

#[test]
fn yaml_round_trip_pgp() {
    let enc = encrypt(YAML.as_bytes(), Format::Yaml, &pgp_opts()).unwrap();
    let plain = decrypt(&enc, Format::Yaml, &pgp_keys()).unwrap();
    assert_eq!(yaml_value(&plain), yaml_value(YAML.as_bytes()));
    let err = decrypt(&enc, Format::Yaml, &age_keys()).unwrap_err();
    assert!(
        matches!(
            err,
            SopsError::NoMatchingKey {
                file_pgp: 1,
                have_age: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn encrypted_regex_and_suffixes() {
    let src = "data:\n    password: a\n    user: b\nstringData:\n    token: c\nmetadata:\n    name: d\n";
    let opts = EncryptOptions {
        encrypted_regex: Some("^(data|stringData)$".into()),
        ..age_opts()
    };
    let enc = encrypt(src.as_bytes(), Format::Yaml, &opts).unwrap();
    let v = yaml_value(&enc);
    assert!(v["data"]["password"].as_str().unwrap().starts_with("ENC["));
    assert!(v["stringData"]["token"].as_str().unwrap().starts_with("ENC["));
    assert_eq!(v["metadata"]["name"], "d");
    assert_eq!(v["sops"]["encrypted_regex"], "^(data|stringData)$");
    assert!(v["sops"].get("unencrypted_suffix").is_none());
    assert_eq!(
        yaml_value(&decrypt(&enc, Format::Yaml, &age_keys()).unwrap()),
        yaml_value(src.as_bytes())
    );

    let src = "a_unencrypted:\n    nested: plain\nb: secret\nc:\n    d_unencrypted: [x, y]\n";
    let enc = encrypt(src.as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let v = yaml_value(&enc);
    assert_eq!(v["a_unencrypted"]["nested"], "plain");
    assert_eq!(v["c"]["d_unencrypted"][1], "y");
    assert!(v["b"].as_str().unwrap().starts_with("ENC["));

    let opts = EncryptOptions {
        encrypted_suffix: Some("_secret".into()),
        ..age_opts()
    };
    let enc = encrypt(b"{\"pw_secret\": \"x\", \"name\": \"y\"}", Format::Json, &opts).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&enc).unwrap();
    assert!(v["pw_secret"].as_str().unwrap().starts_with("ENC["));
    assert_eq!(v["name"], "y");

    let opts = EncryptOptions {
        unencrypted_regex: Some("^name$".into()),
        mac_only_encrypted: true,
        ..age_opts()
    };
    let enc = encrypt(b"{\"pw\": \"x\", \"name\": \"y\"}", Format::Json, &opts).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&enc).unwrap();
    assert_eq!(v["name"], "y");
    assert_eq!(v["sops"]["mac_only_encrypted"], true);
    // with mac_only_encrypted, unencrypted values may change without breaking the MAC (sops semantics)
    let edited = String::from_utf8(enc)
        .unwrap()
        .replace("\"name\": \"y\"", "\"name\": \"z\"");
    let plain = decrypt(edited.as_bytes(), Format::Json, &age_keys()).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains("\"z\""));

    let both = EncryptOptions {
        encrypted_regex: Some("a".into()),
        unencrypted_suffix: Some("_u".into()),
        ..age_opts()
    };
    assert!(matches!(
        encrypt(b"a: 1\n", Format::Yaml, &both),
        Err(SopsError::Options(_))
    ));
    let bad = EncryptOptions {
        encrypted_regex: Some("(".into()),
        ..age_opts()
    };
    assert!(matches!(
        encrypt(b"a: 1\n", Format::Yaml, &bad),
        Err(SopsError::InvalidRegex { .. })
    ));
}

#[test]
fn tampering_is_detected() {
    let src = "secret: s3cr3t-PLAINTEXT-marker\npublic_unencrypted: hello\nother: x\n";
    let enc = String::from_utf8(encrypt(src.as_bytes(), Format::Yaml, &age_opts()).unwrap()).unwrap();
    let keys = age_keys();

    // changing an unencrypted value breaks the MAC
    let t = enc.replace("public_unencrypted: hello", "public_unencrypted: evil");
    assert!(matches!(
        decrypt(t.as_bytes(), Format::Yaml, &keys),
        Err(SopsError::MacMismatch)
    ));
    // removing an encrypted value breaks the MAC
    let t: String = enc
        .lines()
        .filter(|l| !l.starts_with("other:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(matches!(
        decrypt(t.as_bytes(), Format::Yaml, &keys),
        Err(SopsError::MacMismatch)
    ));
    // changing lastmodified breaks the MAC's authentication
    let v = yaml_value(enc.as_bytes());
    let lm = v["sops"]["lastmodified"].as_str().unwrap();
    let t = enc.replace(lm, "2001-01-01T00:00:00Z");
    assert!(matches!(
        decrypt(t.as_bytes(), Format::Yaml, &keys),
        Err(SopsError::MacMismatch)
    ));
    // moving a ciphertext to another key fails its authentication (additional data is the path)
    let secret_line = enc.lines().find(|l| l.starts_with("secret:")).unwrap();
    let other_line = enc.lines().find(|l| l.starts_with("other:")).unwrap();
    let t = enc.replace(other_line, &secret_line.replacen("secret:", "other:", 1));
    match decrypt(t.as_bytes(), Format::Yaml, &keys) {
        Err(SopsError::ValueAuthentication { path }) => assert_eq!(path, "other"),
        other => panic!("{other:?}"),
    }
    // flipping ciphertext bytes
    let data = secret_line.split("data:").nth(1).unwrap().split(',').next().unwrap();
    let flipped: String = data.chars().rev().collect();
    let t = enc.replace(data, &flipped);
    assert!(decrypt(t.as_bytes(), Format::Yaml, &keys).is_err());
    // a forged MAC
    let mac = v["sops"]["mac"].as_str().unwrap();
    let other_enc = other_line.trim_start_matches("other: ");
    let t = enc.replace(mac, other_enc);
    assert!(matches!(
        decrypt(t.as_bytes(), Format::Yaml, &keys),
        Err(SopsError::MacMismatch)
    ));
}

#[test]
fn wrong_key_truncation_and_bad_input() {
    let enc = encrypt(YAML.as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let mut other = Keys::new();
    use age::secrecy::ExposeSecret;
    other
        .add_age_identities(age::x25519::Identity::generate().to_string().expose_secret())
        .unwrap();
    assert!(matches!(
        decrypt(&enc, Format::Yaml, &other),
        Err(SopsError::NoMatchingKey { .. })
    ));
    assert!(matches!(
        decrypt(&enc, Format::Yaml, &Keys::new()),
        Err(SopsError::NoMatchingKey { .. })
    ));

    for cut in [1, 10, enc.len() / 3, enc.len() / 2, enc.len() - 40] {
        assert!(
            decrypt(&enc[..cut], Format::Yaml, &age_keys()).is_err(),
            "truncated at {cut}"
        );
    }
    assert!(matches!(
        decrypt(YAML.as_bytes(), Format::Yaml, &age_keys()),
        Err(SopsError::NotEncrypted)
    ));
    assert!(matches!(
        encrypt(&enc, Format::Yaml, &age_opts()),
        Err(SopsError::AlreadyEncrypted)
    ));
    assert!(matches!(
        encrypt(b"- a\n- b\n", Format::Yaml, &age_opts()),
        Err(SopsError::Structure(_))
    ));
    assert!(matches!(
        encrypt(b"[1]", Format::Json, &age_opts()),
        Err(SopsError::Structure(_))
    ));
    assert!(matches!(
        encrypt(b"NOEQUALS\n", Format::Dotenv, &age_opts()),
        Err(SopsError::Parse { line: Some(1), .. })
    ));
    assert!(matches!(
        encrypt(b"a: 1\n", Format::Yaml, &EncryptOptions::default()),
        Err(SopsError::Options(_))
    ));
    let bad_recipient = EncryptOptions {
        age_recipients: vec!["age1nope".into()],
        ..Default::default()
    };
    assert!(matches!(
        encrypt(b"a: 1\n", Format::Yaml, &bad_recipient),
        Err(SopsError::InvalidKey(_))
    ));

    let huge = vec![b'a'; driftless_sops::MAX_INPUT_BYTES + 1];
    assert!(matches!(
        decrypt(&huge, Format::Binary, &age_keys()),
        Err(SopsError::InputTooLarge { .. })
    ));
    assert!(!is_encrypted(&huge, Format::Yaml));

    // bad base64 in a value
    let t = String::from_utf8(enc.clone()).unwrap();
    let v = yaml_value(&enc);
    let kind = v["kind"].as_str().unwrap();
    let broken = kind.replacen("data:", "data:!!!", 1);
    let t = t.replace(kind, &broken);
    match decrypt(t.as_bytes(), Format::Yaml, &age_keys()) {
        Err(SopsError::InvalidValue { path, .. }) => assert_eq!(path, "kind"),
        other => panic!("{other:?}"),
    }

    // unknown version
    let t = String::from_utf8(enc.clone())
        .unwrap()
        .replace("version: \"3.10.2\"", "version: \"9.0.0\"");
    assert!(matches!(
        decrypt(t.as_bytes(), Format::Yaml, &age_keys()),
        Err(SopsError::UnsupportedVersion(_))
    ));

    // Shamir key groups
    let shamir = "a: b\nsops:\n    key_groups:\n        - age: []\n        - age: []\n    lastmodified: '2020-01-01T00:00:00Z'\n    mac: x\n    version: 3.7.0\n";
    assert!(matches!(
        decrypt(shamir.as_bytes(), Format::Yaml, &age_keys()),
        Err(SopsError::Unsupported(_))
    ));

    // deep nesting
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep = format!("{{\"a\": {deep}}}");
    assert!(decrypt(deep.as_bytes(), Format::Json, &age_keys()).is_err());
    assert!(encrypt(deep.as_bytes(), Format::Json, &age_opts()).is_err());
    let deep_yaml = format!("a: {}1{}\n", "[".repeat(5_000), "]".repeat(5_000));
    assert!(encrypt(deep_yaml.as_bytes(), Format::Yaml, &age_opts()).is_err());
}

#[test]
fn errors_never_contain_plaintext() {
    let keys = age_keys();
    let enc = String::from_utf8(encrypt(YAML.as_bytes(), Format::Yaml, &age_opts()).unwrap()).unwrap();
    let mut errors: Vec<SopsError> = Vec::new();
    // tampered unencrypted value: MAC mismatch after all values were decrypted
    errors.push(decrypt(enc.replace("visible", "changed").as_bytes(), Format::Yaml, &keys).unwrap_err());
    // parse errors on plaintext documents that contain the secret
    for (doc, f) in [
        (format!("a: {SECRET}\n  b: [\n"), Format::Yaml),
        (format!("{{\"a\": \"{SECRET}\", }}"), Format::Json),
        (format!("{{\"a\": {SECRET}}}"), Format::Json),
        (format!("{SECRET}\n"), Format::Dotenv),
        (format!("{SECRET}: {SECRET}\n{SECRET}: x\n"), Format::Yaml),
        (format!("- {SECRET}\n"), Format::Yaml),
        (format!("1: {SECRET}\n"), Format::Yaml),
    ] {
        if let Err(e) = encrypt(doc.as_bytes(), f, &age_opts()) {
            errors.push(e);
        }
        errors.push(decrypt(doc.as_bytes(), f, &keys).unwrap_err());
    }
    // a secret used as key material / version / recipient
    errors.push(
        Keys::new()
            .add_age_identities(&format!("AGE-SECRET-KEY-1{SECRET}"))
            .unwrap_err(),
    );
    errors.push(Keys::new().add_pgp_secret_key(SECRET).unwrap_err());
    let bad = EncryptOptions {
        age_recipients: vec![SECRET.into()],
        ..Default::default()
    };
    errors.push(encrypt(b"a: b\n", Format::Yaml, &bad).unwrap_err());
    let bad = EncryptOptions {
        pgp_public_keys: vec![SECRET.into()],
        ..Default::default()
    };
    errors.push(encrypt(b"a: b\n", Format::Yaml, &bad).unwrap_err());
    // value whose type tag lies about the content
    let enc_int = encrypt(format!("n: {SECRET}\n").as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let t = String::from_utf8(enc_int)
        .unwrap()
        .replacen("type:str]", "type:int]", 1);
    errors.push(decrypt(t.as_bytes(), Format::Yaml, &keys).unwrap_err());
    assert!(errors.len() > 10);
    for e in &errors {
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("s3cr3t"),
            "plaintext leaked: {shown}"
        );
    }
    assert!(!format!("{:?}", keys).contains("AGE-SECRET-KEY"));
}

#[test]
fn random_bytes_never_panic() {
    // A small deterministic xorshift generator keeps this quick and reproducible.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let keys = age_keys();
    let enc = encrypt(YAML.as_bytes(), Format::Yaml, &age_opts()).unwrap();
    let enc_json = encrypt(JSON.as_bytes(), Format::Json, &age_opts()).unwrap();
    for i in 0..400 {
        let len = (next() % 300) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 {
            // mutate a real file instead of pure noise, to get past the parsers
            buf = if i % 4 == 0 { enc.clone() } else { enc_json.clone() };
            for _ in 0..1 + next() % 4 {
                let p = (next() as usize) % buf.len();
                buf[p] = next() as u8;
            }
        }
        for f in [Format::Yaml, Format::Json, Format::Dotenv, Format::Binary] {
            let _ = is_encrypted(&buf, f);
            if let Ok(out) = decrypt(&buf, f, &keys) {
                // only an unmodified file may decrypt: mutations inside ENC data or the MAC must be caught
                assert!(!out.is_empty());
            }
        }
    }
}

#[test]
fn age_cli_decrypts_our_stanza_and_we_decrypt_its_output() {
    if !have("age") {
        eprintln!("SKIPPED: `age` CLI not installed (see tests/APT_PACKAGES)");
        return;
    }
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let id_file = dir.path().join("keys.txt");
    std::fs::write(&id_file, format!("{}\n", age_identity().to_string().expose_secret())).unwrap();

    // 1. age -d of the `enc` of our recipient stanza yields the 32-byte data key
    let enc = encrypt(b"a: s3cr3t-PLAINTEXT-marker\n", Format::Yaml, &age_opts()).unwrap();
    let stanza = sops_meta(&enc, Format::Yaml)["age"][0]["enc"]
        .as_str()
        .unwrap()
        .to_string();
    let mut child = Command::new("age")
        .args(["-d", "-i"])
        .arg(&id_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stanza.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 32, "data key length");

    // 2. a data key encrypted by `age -r RECIPIENT -a` is accepted in a sops file: re-wrap our own data key with the CLI
    let recipient = age_identity().to_public().to_string();
    let mut child = Command::new("age")
        .args(["-r", &recipient, "-a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let rewrapped = child.wait_with_output().unwrap();
    assert!(rewrapped.status.success());
    let cli_armor = String::from_utf8(rewrapped.stdout).unwrap();
    assert!(cli_armor.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    let mut doc = yaml_value(&enc);
    doc["sops"]["age"][0]["enc"] = serde_json::Value::String(cli_armor);
    let rebuilt = serde_json::to_vec(&doc).unwrap(); // JSON is valid YAML, and key order is kept
    let plain = decrypt(&rebuilt, Format::Yaml, &age_keys()).unwrap();
    assert_eq!(yaml_value(&plain)["a"], SECRET);
    // and also through the JSON store
    let plain = decrypt(&rebuilt, Format::Json, &age_keys()).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains(SECRET));
}

#[test]
fn gpg_decrypts_our_pgp_stanza() {
    let key = pgp_key();
    let Some(home) = &key.home else {
        eprintln!("SKIPPED: gpg not installed (see tests/APT_PACKAGES)");
        return;
    };
    let enc = encrypt(b"{\"a\": \"s3cr3t-PLAINTEXT-marker\"}", Format::Json, &pgp_opts()).unwrap();
    let meta = sops_meta(&enc, Format::Json);
    let stanza = meta["pgp"][0]["enc"].as_str().unwrap();
    let out = gpg(home.path(), &["--decrypt"], Some(stanza.as_bytes()));
    assert_eq!(out.stdout.len(), 32);

    // the fingerprint we record is the primary key's, as sops does
    let listing = String::from_utf8(gpg(home.path(), &["--with-colons", "--list-keys"], None).stdout).unwrap();
    let fp = listing
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap();
    assert_eq!(meta["pgp"][0]["fp"], fp);

    // and a data key that gpg encrypted is accepted by us
    let mut doc = meta.clone();
    let gpg_enc = gpg(
        home.path(),
        &["--armor", "--trust-model", "always", "--encrypt", "-r", fp],
        Some(&out.stdout),
    );
    doc["pgp"][0]["enc"] = serde_json::Value::String(String::from_utf8(gpg_enc.stdout).unwrap());
    let mut full: serde_json::Value = serde_json::from_slice(&enc).unwrap();
    full["sops"] = doc;
    let plain = decrypt(&serde_json::to_vec(&full).unwrap(), Format::Json, &pgp_keys()).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains(SECRET));
}

#[test]
fn keys_from_env_and_identity_file_format() {
    use age::secrecy::ExposeSecret;
    let id2 = age::x25519::Identity::generate();
    let mut k = Keys::new();
    let text = format!(
        "# created: 2024\n# public key: {}\n{}\n\n{} {}\n",
        age_identity().to_public(),
        age_identity().to_string().expose_secret(),
        id2.to_string().expose_secret(),
        id2.to_string().expose_secret()
    );
    assert_eq!(k.add_age_identities(&text).unwrap(), 3);
    let err = k.add_age_identities("# ok\nnot-a-key\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let _ = age::x25519::Recipient::from_str(&age_identity().to_public().to_string()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("keys.txt");
    std::fs::write(&f, format!("{}\n", id2.to_string().expose_secret())).unwrap();
    // SAFETY: this is the only test touching these variables.
    unsafe {
        std::env::set_var("SOPS_AGE_KEY_FILE", &f);
        std::env::set_var("SOPS_AGE_KEY", age_identity().to_string().expose_secret());
    }
    let k = Keys::from_env().unwrap();
    unsafe {
        std::env::remove_var("SOPS_AGE_KEY_FILE");
        std::env::remove_var("SOPS_AGE_KEY");
    }
    assert_eq!(k.age_identity_count(), 2);
    let enc = encrypt(
        b"a: b\n",
        Format::Yaml,
        &EncryptOptions {
            age_recipients: vec![id2.to_public().to_string()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(decrypt(&enc, Format::Yaml, &k).is_ok());
}

#[test]
fn format_from_path() {
    use std::path::Path;
    assert_eq!(Format::from_path(Path::new("a/secret.enc.yaml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("x.yml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("x.json")), Format::Json);
    assert_eq!(Format::from_path(Path::new(".env")), Format::Dotenv); // sops: HasSuffix(".env")
    assert_eq!(Format::from_path(Path::new("X.YAML")), Format::Binary);
    assert_eq!(Format::from_path(Path::new("prod.env")), Format::Dotenv);
    assert_eq!(Format::from_path(Path::new("key.pem")), Format::Binary);
}

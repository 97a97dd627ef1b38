//! Real signatures made by the real tools: `git` with `gpg` (OpenPGP) and with `ssh-keygen`
//! (`gpg.format=ssh`), read back through `GitCache::raw_commit` / `raw_tags_for` and verified.
//! Needs `git`, `gpg` and `ssh-keygen` (see APT_PACKAGES).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use driftless_source::{Credentials, GitCache};
use driftless_verify::{Mode, SignatureKind, TrustedKeys, VerifyError, verify_object, verify_revision};

/// A scratch area: a GNUPGHOME, a git repository and a GitCache.
struct Lab {
    dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // stop the gpg-agent this GNUPGHOME started
        let _ = Command::new("gpgconf")
            .args(["--kill", "all"])
            .env("GNUPGHOME", self.gnupg())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::Builder::new().prefix("dv").tempdir_in("/tmp").unwrap();
        let lab = Lab { dir };
        std::fs::create_dir(lab.gnupg()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(lab.gnupg(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        lab.git(&["init", "-q", "-b", "main", lab.repo().to_str().unwrap()]);
        lab
    }

    fn gnupg(&self) -> PathBuf {
        self.dir.path().join("g")
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("GNUPGHOME", self.gnupg())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.repo().exists() {
            cmd.current_dir(self.repo());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program} (install git, gnupg and openssh-client): {e}"));
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn git(&self, args: &[&str]) -> String {
        String::from_utf8(self.run("git", args, None))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Generate an OpenPGP key without passphrase; returns its fingerprint.
    fn gpg_key(&self, uid: &str, algo: &str, expire: &str) -> String {
        self.run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                algo,
                "sign",
                expire,
            ],
            None,
        );
        let out = String::from_utf8(self.run("gpg", &["--with-colons", "--list-keys", uid], None)).unwrap();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string()
    }

    fn gpg_export(&self, fpr: &str) -> String {
        String::from_utf8(self.run("gpg", &["--export", "--armor", fpr], None)).unwrap()
    }

    /// An ssh key pair without passphrase; returns the public key path.
    fn ssh_key(&self, name: &str, kind: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name, "-f", path.to_str().unwrap()];
        if kind == "rsa" {
            args.extend(["-b", "2048"]);
        }
        self.run("ssh-keygen", &args, None);
        path.with_extension("pub")
    }

    /// An empty commit, signed per `sign` (extra `-c` options), returning its id.
    fn commit(&self, msg: &str, sign: &[&str]) -> String {
        let mut args: Vec<&str> = sign.iter().flat_map(|o| ["-c", o]).collect();
        args.extend(["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&args);
        self.git(&["rev-parse", "HEAD"])
    }

    fn tag(&self, name: &str, sign: &[&str]) {
        let mut args: Vec<&str> = sign.iter().flat_map(|o| ["-c", o]).collect();
        let msg = format!("release {name}");
        args.extend(["tag", "-s", name, "-m", &msg]);
        self.git(&args);
    }

    /// A copy of object `id` with one byte of its message changed, written to the repository
    /// (and referenced by `refname` so a fetch brings it). Returns the new id.
    fn forge(&self, id: &str, kind: &str, needle: &str, refname: &str) -> String {
        let mut raw = self.run("git", &["cat-file", kind, id], None);
        let pos = raw.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap();
        raw[pos] ^= 0x20; // flip case of the first letter
        let new = String::from_utf8(self.run("git", &["hash-object", "-w", "-t", kind, "--stdin"], Some(&raw)))
            .unwrap()
            .trim()
            .to_string();
        self.git(&["update-ref", refname, &new]);
        new
    }

    fn cache(&self) -> (GitCache, String) {
        let cache = GitCache::new(self.dir.path().join("cache")).with_timeout(Duration::from_secs(60));
        let url = self.repo().to_str().unwrap().to_string();
        cache.fetch(&url, &Credentials::anonymous()).unwrap();
        (cache, url)
    }
}

fn signed_with_gpg(fpr: &str) -> Vec<String> {
    vec![
        format!("user.signingkey={fpr}"),
        "commit.gpgsign=true".to_string(),
        "gpg.format=openpgp".to_string(),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn openpgp_commits_and_tags() {
    let lab = Lab::new();
    let ed = lab.gpg_key("Test <t@example.com>", "ed25519", "never");
    let rsa = lab.gpg_key("Rsa <rsa@example.com>", "rsa2048", "never");
    let other = lab.gpg_key("Other <o@example.com>", "ed25519", "never");

    let unsigned = lab.commit("unsigned", &[]);
    let by_ed = lab.commit("signed by ed25519", &refs(&signed_with_gpg(&ed)));
    lab.tag("v1.0.0", &refs(&signed_with_gpg(&ed)));
    lab.git(&["tag", "lightweight"]); // a lightweight tag at the same commit
    let by_rsa = lab.commit("signed by rsa", &refs(&signed_with_gpg(&rsa)));
    lab.tag("v1.1.0", &refs(&signed_with_gpg(&rsa)));
    let by_other = lab.commit("signed by other", &refs(&signed_with_gpg(&other)));
    lab.tag("v2.0.0", &refs(&signed_with_gpg(&other)));
    let forged = lab.forge(&by_ed, "commit", "signed by", "refs/heads/forged");
    let forged_tag = lab.forge("v1.0.0", "tag", "release", "refs/tags/v1.0.0-forged");

    let (cache, url) = lab.cache();
    let keys = TrustedKeys::parse(&[lab.gpg_export(&ed), lab.gpg_export(&rsa)]).unwrap();
    assert_eq!(keys.pgp_fingerprints().len(), 2);

    // raw_commit is the object git has
    let raw = cache.raw_commit(&url, &by_ed).unwrap();
    assert_eq!(raw, lab.run("git", &["cat-file", "commit", &by_ed], None));

    let v = verify_object(&raw, &keys).unwrap();
    assert_eq!(v.kind, SignatureKind::Pgp);
    assert_eq!(v.object, format!("commit {by_ed}"));
    assert!(v.signer.starts_with(&ed), "{v:?}");
    assert!(v.signer.contains("Test <t@example.com>"), "{v:?}");
    let v = verify_object(&cache.raw_commit(&url, &by_rsa).unwrap(), &keys).unwrap();
    assert!(v.signer.starts_with(&rsa), "{v:?}");

    // tags: only annotated ones, and they verify
    let tags = cache.raw_tags_for(&url, &by_ed).unwrap();
    let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
    // (the forged tag object points at the same commit, under another ref name)
    assert_eq!(names, ["v1.0.0", "v1.0.0-forged"]);
    let err = verify_revision(Mode::Tag, &raw, &tags[1..], &keys).unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { .. }), "{err:?}");
    assert_eq!(tags[0].1, lab.run("git", &["cat-file", "tag", "v1.0.0"], None));
    let v = verify_object(&tags[0].1, &keys).unwrap();
    assert_eq!(v.object, "tag v1.0.0");
    let rsa_tags = cache.raw_tags_for(&url, &by_rsa).unwrap();
    assert_eq!(verify_object(&rsa_tags[0].1, &keys).unwrap().object, "tag v1.1.0");
    let all = verify_revision(Mode::Both, &raw, &tags, &keys).unwrap();
    assert_eq!(all.len(), 2);
    assert!(cache.raw_tags_for(&url, &unsigned).unwrap().is_empty());

    // untrusted key
    let err = verify_object(&cache.raw_commit(&url, &by_other).unwrap(), &keys).unwrap_err();
    match &err {
        VerifyError::UntrustedKey { fingerprint, object } => {
            assert_eq!(fingerprint, &other);
            assert_eq!(object, &format!("commit {by_other}"));
        }
        e => panic!("expected UntrustedKey, got {e:?}"),
    }
    assert!(
        err.to_string().contains("signature") && err.to_string().contains(&other),
        "{err}"
    );
    let other_tags = cache.raw_tags_for(&url, &by_other).unwrap();
    let err = verify_revision(
        Mode::Tag,
        &cache.raw_commit(&url, &by_other).unwrap(),
        &other_tags,
        &keys,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedKey { .. }), "{err:?}");

    // unsigned
    let unsigned_raw = cache.raw_commit(&url, &unsigned).unwrap();
    let err = verify_object(&unsigned_raw, &keys).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Unsigned {
            object: format!("commit {unsigned}")
        }
    );
    assert!(err.to_string().contains("signature"));
    let err = verify_revision(Mode::Tag, &unsigned_raw, &[], &keys).unwrap_err();
    assert!(matches!(err, VerifyError::Unsigned { .. }), "{err:?}");

    // forged: one byte of the message changed
    let err = verify_object(&cache.raw_commit(&url, &forged).unwrap(), &keys).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("signature"));
    let forged_raw = lab.run("git", &["cat-file", "tag", &forged_tag], None);
    let err = verify_object(&forged_raw, &keys).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");

    // the source refuses what is not a commit
    assert!(cache.raw_commit(&url, &forged_tag).is_err());
    assert!(cache.raw_commit(&url, &"0".repeat(40)).is_err());
    assert!(cache.raw_commit(&url, "main").is_err());
    assert!(cache.raw_tags_for(&url, &forged_tag).is_err());
}

#[test]
fn openpgp_subkeys_revocation_and_expiry() {
    let lab = Lab::new();
    // a signing subkey: git signs with it, the trusted key is the exported primary
    let primary = lab.gpg_key("Sub <sub@example.com>", "ed25519", "never");
    lab.run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-add-key",
            &primary,
            "ed25519",
            "sign",
            "never",
        ],
        None,
    );
    let listing = String::from_utf8(lab.run("gpg", &["--with-colons", "--list-keys", &primary], None)).unwrap();
    let fprs: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .filter_map(|l| l.split(':').nth(9))
        .collect();
    let sub = fprs[1].to_string();
    let by_sub = lab.commit("by subkey", &refs(&signed_with_gpg(&format!("{sub}!"))));

    // a key that expires two seconds after it is made
    let expiring = lab.gpg_key("Exp <exp@example.com>", "ed25519", "seconds=2");
    let by_expiring = lab.commit("by expiring key", &refs(&signed_with_gpg(&expiring)));

    // a key that is then revoked
    let revoked = lab.gpg_key("Rev <rev@example.com>", "ed25519", "never");
    let by_revoked = lab.commit("by revoked key", &refs(&signed_with_gpg(&revoked)));
    let exported_before_revocation = lab.gpg_export(&revoked);
    let rev_file = lab.gnupg().join("openpgp-revocs.d").join(format!("{revoked}.rev"));
    let cert = std::fs::read_to_string(&rev_file)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    lab.run("gpg", &["--batch", "--import"], Some(cert.as_bytes()));

    let (cache, url) = lab.cache();
    let keys = TrustedKeys::parse(&[lab.gpg_export(&primary)]).unwrap();
    let v = verify_object(&cache.raw_commit(&url, &by_sub).unwrap(), &keys).unwrap();
    assert!(v.signer.starts_with(&primary), "{v:?}");
    assert!(v.signer.contains(&format!("subkey {sub}")), "{v:?}");

    std::thread::sleep(Duration::from_secs(3));
    let keys = TrustedKeys::parse(&[lab.gpg_export(&expiring)]).unwrap();
    let err = verify_object(&cache.raw_commit(&url, &by_expiring).unwrap(), &keys).unwrap_err();
    assert!(matches!(err, VerifyError::ExpiredKey { .. }), "{err:?}");
    assert!(err.to_string().contains("signature"));

    let raw = cache.raw_commit(&url, &by_revoked).unwrap();
    let keys = TrustedKeys::parse(&[exported_before_revocation]).unwrap();
    verify_object(&raw, &keys).unwrap();
    let keys = TrustedKeys::parse(&[lab.gpg_export(&revoked)]).unwrap();
    let err = verify_object(&raw, &keys).unwrap_err();
    assert!(matches!(err, VerifyError::RevokedKey { .. }), "{err:?}");
}

fn signed_with_ssh(pubkey: &Path) -> Vec<String> {
    vec![
        format!("user.signingkey={}", pubkey.display()),
        "gpg.format=ssh".to_string(),
        "commit.gpgsign=true".to_string(),
    ]
}

#[test]
fn ssh_commits_and_tags() {
    let lab = Lab::new();
    let ed = lab.ssh_key("ed", "ed25519");
    let rsa = lab.ssh_key("rsa", "rsa");
    let ecdsa = lab.ssh_key("ecdsa", "ecdsa");
    let other = lab.ssh_key("other", "ed25519");

    let by_ed = lab.commit("ssh ed25519", &refs(&signed_with_ssh(&ed)));
    lab.tag("v1", &refs(&signed_with_ssh(&ed)));
    let by_rsa = lab.commit("ssh rsa", &refs(&signed_with_ssh(&rsa)));
    let by_ecdsa = lab.commit("ssh ecdsa", &refs(&signed_with_ssh(&ecdsa)));
    let by_other = lab.commit("ssh other", &refs(&signed_with_ssh(&other)));
    lab.tag("v2", &refs(&signed_with_ssh(&other)));
    let forged = lab.forge(&by_ed, "commit", "ssh ed25519", "refs/heads/forged");
    let forged_tag = lab.forge("v1", "tag", "release", "refs/tags/v1-forged");

    let (cache, url) = lab.cache();
    let ed_line = std::fs::read_to_string(&ed).unwrap();
    // the public key file itself, and allowed_signers lines for the others
    let allowed = format!(
        "# allowed signers\nrsa@example.com {}\necdsa@example.com namespaces=\"git\" {}",
        std::fs::read_to_string(&rsa).unwrap().trim(),
        std::fs::read_to_string(&ecdsa).unwrap().trim()
    );
    let allowed_path = lab.dir.path().join("allowed_signers");
    std::fs::write(&allowed_path, &allowed).unwrap();
    let keys = TrustedKeys::parse_files(&[ed.clone(), allowed_path.clone()]).unwrap();
    assert_eq!(keys.ssh_fingerprints().len(), 3);

    let raw = cache.raw_commit(&url, &by_ed).unwrap();
    let v = verify_object(&raw, &keys).unwrap();
    assert_eq!(v.kind, SignatureKind::Ssh);
    assert_eq!(v.object, format!("commit {by_ed}"));
    assert!(v.signer.starts_with("SHA256:") && v.signer.ends_with(" ed"), "{v:?}");
    let tags = cache.raw_tags_for(&url, &by_ed).unwrap();
    assert_eq!(verify_object(&tags[0].1, &keys).unwrap().object, "tag v1");
    assert_eq!(verify_revision(Mode::Both, &raw, &tags, &keys).unwrap().len(), 2);

    let v = verify_object(&cache.raw_commit(&url, &by_rsa).unwrap(), &keys).unwrap();
    assert!(v.signer.ends_with(" rsa@example.com"), "{v:?}");
    let v = verify_object(&cache.raw_commit(&url, &by_ecdsa).unwrap(), &keys).unwrap();
    assert!(v.signer.ends_with(" ecdsa@example.com"), "{v:?}");

    // only the ed25519 key from a plain public key entry
    let only_ed = TrustedKeys::parse(std::slice::from_ref(&ed_line)).unwrap();
    let err = verify_object(&cache.raw_commit(&url, &by_rsa).unwrap(), &only_ed).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedKey { .. }), "{err:?}");

    // untrusted key, in commit and tag mode
    let other_raw = cache.raw_commit(&url, &by_other).unwrap();
    let err = verify_object(&other_raw, &keys).unwrap_err();
    match &err {
        VerifyError::UntrustedKey { fingerprint, .. } => assert!(fingerprint.starts_with("SHA256:")),
        e => panic!("expected UntrustedKey, got {e:?}"),
    }
    let other_tags = cache.raw_tags_for(&url, &by_other).unwrap();
    let err = verify_revision(Mode::Tag, &other_raw, &other_tags, &keys).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedKey { .. }), "{err:?}");

    // a key restricted to another namespace does not count for git
    let file_only = format!(
        "o@example.com namespaces=\"file\" {}",
        std::fs::read_to_string(&other).unwrap()
    );
    let err = verify_object(&other_raw, &TrustedKeys::parse(&[file_only]).unwrap()).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedKey { .. }), "{err:?}");

    // forged
    let err = verify_object(&cache.raw_commit(&url, &forged).unwrap(), &keys).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("signature"));
    let forged_raw = lab.run("git", &["cat-file", "tag", &forged_tag], None);
    let err = verify_object(&forged_raw, &keys).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");

    // git itself (through ssh-keygen) agrees with the allowed_signers file we parsed
    let allowed_opt = format!("gpg.ssh.allowedSignersFile={}", allowed_path.display());
    lab.git(&["-c", &allowed_opt, "verify-commit", &by_rsa]);
}

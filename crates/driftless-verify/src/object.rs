//! Splitting a raw git commit or tag object into the signed payload and its signature block,
//! exactly as git does (`parse_buffer_signed_by_header` for commits, `parse_signed_buffer` for
//! tags), but refusing whatever git would resolve silently: several signature blocks, data after
//! the signature, unknown `gpgsig*` headers, oversized objects.

use sha2::Digest;

use crate::VerifyError;

/// Largest raw object accepted (commits and tags are small; a huge one is an attack).
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;

/// What kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Commit,
    Tag,
}

/// The signature block's format, from its armor line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Pgp,
    Ssh,
}

/// A raw object split into what was signed and the signature.
#[derive(Debug)]
pub(crate) struct SignedObject {
    pub kind: ObjectKind,
    /// `commit <sha>` or `tag <name>`.
    pub description: String,
    /// Commit: its id (hex). Tag: the id of the object it points to.
    pub target: String,
    /// Tag: the `type` header (what it points to).
    pub target_type: Option<String>,
    /// Tag: its name (`tag` header).
    pub tag_name: Option<String>,
    /// The bytes the signature covers.
    pub payload: Vec<u8>,
    /// The signature block (armor lines, `\n`-terminated), if the object is signed.
    pub signature: Option<(BlockKind, String)>,
}

const PGP_BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
const PGP_END: &str = "-----END PGP SIGNATURE-----";
const SSH_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const SSH_END: &str = "-----END SSH SIGNATURE-----";
/// Every line prefix git takes as the start of a tag signature (`gpg-interface.c`).
const SIG_STARTS: [&str; 4] = [
    PGP_BEGIN,
    "-----BEGIN PGP MESSAGE-----",
    "-----BEGIN SIGNED MESSAGE-----",
    SSH_BEGIN,
];

/// One line of the object, with its terminating `\n` (absent only on the last line).
fn lines(raw: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= raw.len() {
            return None;
        }
        let start = pos;
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        pos = end;
        Some((start, &raw[start..end]))
    })
}

fn malformed(object: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed {
        object: object.to_string(),
        reason: reason.into(),
    }
}

/// Length of the header section (up to and including the empty line), or the whole object when
/// it has no message.
fn header_len(raw: &[u8]) -> usize {
    for (start, line) in lines(raw) {
        if line == b"\n" {
            return start + 1;
        }
    }
    raw.len()
}

fn hex_id(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    ((s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| s.to_string())
}

/// The value of the first header line named `key` (without continuation lines).
fn header<'a>(headers: &'a [u8], key: &str) -> Option<&'a [u8]> {
    lines(headers).find_map(|(_, line)| {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        line.strip_prefix(key.as_bytes())?.strip_prefix(b" ")
    })
}

/// Split `raw` (a commit or an annotated tag object, without the `type len\0` prefix).
pub(crate) fn parse(raw: &[u8]) -> Result<SignedObject, VerifyError> {
    const UNKNOWN: &str = "git object";
    if raw.len() > MAX_OBJECT_BYTES {
        return Err(malformed(
            UNKNOWN,
            format!(
                "the object is {} bytes, more than the limit of {MAX_OBJECT_BYTES}",
                raw.len()
            ),
        ));
    }
    if raw.starts_with(b"tree ") {
        parse_commit(raw)
    } else if raw.starts_with(b"object ") {
        parse_tag(raw)
    } else {
        Err(malformed(
            UNKNOWN,
            "not a commit or annotated tag object (expected a first line `tree …` or `object …`)",
        ))
    }
}

fn parse_commit(raw: &[u8]) -> Result<SignedObject, VerifyError> {
    let hlen = header_len(raw);
    let headers = &raw[..hlen];
    let tree = header(headers, "tree").and_then(hex_id);
    let Some(tree) = tree else {
        return Err(malformed("commit", "the first line is not `tree <hex id>`"));
    };
    let sha256 = tree.len() == 64;
    let id = if sha256 {
        let mut h = sha2::Sha256::new();
        h.update(format!("commit {}\0", raw.len()));
        h.update(raw);
        hex::encode(h.finalize())
    } else {
        let mut h = sha1::Sha1::new();
        h.update(format!("commit {}\0", raw.len()));
        h.update(raw);
        hex::encode(h.finalize())
    };
    let object = format!("commit {id}");
    // The header that signs an object of this hash format; the other one belongs to the
    // object's compatibility (other-hash) twin and is dropped from the payload, as git does.
    let (native, other) = if sha256 {
        ("gpgsig-sha256", "gpgsig")
    } else {
        ("gpgsig", "gpgsig-sha256")
    };

    let mut payload = Vec::with_capacity(raw.len());
    let mut native_sigs: Vec<Vec<u8>> = Vec::new();
    let mut other_sigs = 0usize;
    // Which header the current continuation lines belong to.
    enum Cur {
        Payload,
        Native,
        Other,
    }
    let mut cur: Option<Cur> = None;
    for (_, line) in lines(headers) {
        if line == b"\n" {
            break;
        }
        if !line.ends_with(b"\n") {
            return Err(malformed(&object, "the headers do not end with a newline"));
        }
        if let Some(cont) = line.strip_prefix(b" ") {
            match cur {
                None => return Err(malformed(&object, "a continuation line before any header")),
                Some(Cur::Native) => {
                    if let Some(sig) = native_sigs.last_mut() {
                        sig.extend_from_slice(cont);
                    }
                }
                Some(Cur::Other) => {}
                Some(Cur::Payload) => payload.extend_from_slice(line),
            }
            continue;
        }
        let Some(sp) = line.iter().position(|&b| b == b' ') else {
            return Err(malformed(&object, "a header line without a value"));
        };
        let key = &line[..sp];
        if key == native.as_bytes() {
            native_sigs.push(line[sp + 1..].to_vec());
            cur = Some(Cur::Native);
        } else if key == other.as_bytes() {
            other_sigs += 1;
            cur = Some(Cur::Other);
        } else if key.starts_with(b"gpgsig") {
            // git drops every `gpgsig*` line from the payload; refuse what we do not know.
            return Err(malformed(
                &object,
                format!("unknown signature header `{}`", String::from_utf8_lossy(key)),
            ));
        } else {
            payload.extend_from_slice(line);
            cur = Some(Cur::Payload);
        }
    }
    payload.extend_from_slice(&raw[payload_rest_start(raw, hlen)..]);

    if native_sigs.len() > 1 || other_sigs > 1 {
        return Err(malformed(&object, "several signature headers"));
    }
    let signature = match native_sigs.pop() {
        Some(sig) => Some(check_block(&object, &sig)?),
        None if other_sigs > 0 => {
            return Err(malformed(
                &object,
                format!("only a `{other}` signature, which does not cover this object's `{native}` format"),
            ));
        }
        None => None,
    };
    Ok(SignedObject {
        kind: ObjectKind::Commit,
        description: object,
        target: id,
        target_type: None,
        tag_name: None,
        payload,
        signature,
    })
}

/// Where the message starts: the empty line ending the headers is part of the payload.
fn payload_rest_start(raw: &[u8], hlen: usize) -> usize {
    if hlen > 0 && hlen <= raw.len() && raw[..hlen].ends_with(b"\n\n") {
        hlen - 1
    } else {
        hlen
    }
}

fn parse_tag(raw: &[u8]) -> Result<SignedObject, VerifyError> {
    let hlen = header_len(raw);
    let headers = &raw[..hlen];
    let name = header(headers, "tag").map(|n| String::from_utf8_lossy(n).into_owned());
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(malformed("tag", "no `tag <name>` header"));
    };
    let object = format!("tag {name}");
    let Some(target) = header(headers, "object").and_then(hex_id) else {
        return Err(malformed(&object, "the first line is not `object <hex id>`"));
    };
    let target_type = header(headers, "type").map(|t| String::from_utf8_lossy(t).into_owned());
    if headers.last() != Some(&b'\n') {
        return Err(malformed(&object, "the headers do not end with a newline"));
    }

    // git: the signature starts at the last line that begins like a signature.
    let starts: Vec<usize> = lines(raw)
        .filter(|(_, line)| SIG_STARTS.iter().any(|s| line.starts_with(s.as_bytes())))
        .map(|(start, _)| start)
        .collect();
    let signature = match starts.as_slice() {
        [] => None,
        [start] if *start < hlen => {
            return Err(malformed(&object, "a signature block inside the tag headers"));
        }
        [start] => Some(*start),
        _ => return Err(malformed(&object, "several signature blocks")),
    };
    let (payload, signature) = match signature {
        None => (raw.to_vec(), None),
        Some(start) => (raw[..start].to_vec(), Some(check_block(&object, &raw[start..])?)),
    };
    Ok(SignedObject {
        kind: ObjectKind::Tag,
        description: object,
        target,
        target_type,
        tag_name: Some(name),
        payload,
        signature,
    })
}

/// Check that `block` is exactly one armored signature: the BEGIN line, body lines, the matching
/// END line, and nothing after it but the final newline.
fn check_block(object: &str, block: &[u8]) -> Result<(BlockKind, String), VerifyError> {
    let text = std::str::from_utf8(block).map_err(|_| malformed(object, "the signature block is not ASCII"))?;
    if !text.is_ascii() {
        return Err(malformed(object, "the signature block is not ASCII"));
    }
    let first = text.lines().next().unwrap_or("");
    let (kind, end) = match first {
        PGP_BEGIN => (BlockKind::Pgp, PGP_END),
        SSH_BEGIN => (BlockKind::Ssh, SSH_END),
        "-----BEGIN SIGNED MESSAGE-----" => {
            return Err(VerifyError::UnsupportedAlgorithm {
                object: object.to_string(),
                algorithm: "X.509 (gpgsm) signature".into(),
            });
        }
        "-----BEGIN PGP MESSAGE-----" => {
            return Err(VerifyError::UnsupportedAlgorithm {
                object: object.to_string(),
                algorithm: "an OpenPGP message instead of a detached signature".into(),
            });
        }
        _ => return Err(malformed(object, "the signature does not start with a BEGIN line")),
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut ends = 0;
    let mut begins = 0;
    for line in body.split('\n') {
        if line.starts_with("-----BEGIN") {
            begins += 1;
        }
        if line.starts_with("-----END") {
            ends += 1;
        }
    }
    if begins != 1 || ends != 1 {
        return Err(malformed(object, "several signature blocks"));
    }
    if !body.ends_with(end) || !(body.ends_with(&format!("\n{end}"))) {
        return Err(malformed(
            object,
            format!("data after the signature, or no `{end}` line"),
        ));
    }
    if body.contains('\r') {
        return Err(malformed(object, "carriage returns in the signature block"));
    }
    Ok((kind, format!("{body}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &[u8] = include_bytes!("../tests/fixtures/pgp-commit.txt");
    const TAG: &[u8] = include_bytes!("../tests/fixtures/pgp-tag.txt");
    const SSH_COMMIT: &[u8] = include_bytes!("../tests/fixtures/ssh-commit.txt");

    #[test]
    fn commit_gpgsig_is_cut_out_of_the_payload() {
        let o = parse(COMMIT).unwrap();
        assert_eq!(o.kind, ObjectKind::Commit);
        let payload = String::from_utf8(o.payload).unwrap();
        assert!(!payload.contains("gpgsig"), "{payload}");
        assert!(!payload.contains("PGP"), "{payload}");
        assert!(payload.starts_with("tree "));
        assert!(payload.contains("\ncommitter "));
        assert!(payload.contains("\n\nhello\n"), "{payload}");
        let (kind, sig) = o.signature.unwrap();
        assert_eq!(kind, BlockKind::Pgp);
        assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----\n\n"), "{sig}");
        assert!(sig.ends_with("-----END PGP SIGNATURE-----\n"));
        // continuation lines lost exactly one leading space each
        assert!(!sig.lines().any(|l| l.starts_with(' ')), "{sig}");
    }

    #[test]
    fn commit_id_is_the_git_object_id() {
        let o = parse(COMMIT).unwrap();
        let expected = std::str::from_utf8(include_bytes!("../tests/fixtures/pgp-commit.id"))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(o.target, expected);
        assert_eq!(o.description, format!("commit {expected}"));
    }

    #[test]
    fn payload_is_the_object_rebuilt_without_the_header() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n \n -----END SSH SIGNATURE-----\nmergetag object 1234\n type commit\n\nmsg\n\nbody\n";
        let o = parse(raw).unwrap();
        assert_eq!(
            String::from_utf8(o.payload).unwrap(),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\nmergetag object 1234\n type commit\n\nmsg\n\nbody\n"
        );
        assert_eq!(
            o.signature.unwrap(),
            (
                BlockKind::Ssh,
                "-----BEGIN SSH SIGNATURE-----\nabc\n\n-----END SSH SIGNATURE-----\n".to_string()
            )
        );
    }

    #[test]
    fn sha256_objects_use_gpgsig_sha256_and_drop_gpgsig() {
        let tree = "a".repeat(64);
        let raw = format!(
            "tree {tree}\ngpgsig -----BEGIN PGP SIGNATURE-----\n compat\n -----END PGP SIGNATURE-----\ngpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n native\n -----END PGP SIGNATURE-----\nauthor A <a@b> 1 +0000\n\nm\n"
        );
        let o = parse(raw.as_bytes()).unwrap();
        assert_eq!(o.target.len(), 64);
        assert_eq!(
            String::from_utf8(o.payload).unwrap(),
            format!("tree {tree}\nauthor A <a@b> 1 +0000\n\nm\n")
        );
        assert!(o.signature.unwrap().1.contains("\nnative\n"));
        // a SHA-1 object with only the SHA-256 signature is not signed for its own format
        let raw = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ngpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----\n\nm\n";
        assert!(matches!(parse(raw.as_bytes()), Err(VerifyError::Malformed { .. })));
    }

    #[test]
    fn unsigned_commit_has_no_signature_and_the_whole_payload() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\n\nm\n-----BEGIN PGP SIGNATURE-----\nnot a header\n-----END PGP SIGNATURE-----\n";
        let o = parse(raw).unwrap();
        assert!(o.signature.is_none());
        assert_eq!(o.payload, raw);
    }

    #[test]
    fn tag_payload_is_everything_before_the_signature() {
        let o = parse(TAG).unwrap();
        assert_eq!(o.kind, ObjectKind::Tag);
        assert_eq!(o.description, "tag v1");
        assert_eq!(o.tag_name.as_deref(), Some("v1"));
        assert_eq!(o.target_type.as_deref(), Some("commit"));
        let payload = String::from_utf8(o.payload).unwrap();
        assert!(payload.ends_with("\n\ntag msg\n"), "{payload}");
        let (kind, sig) = o.signature.unwrap();
        assert_eq!(kind, BlockKind::Pgp);
        assert_eq!(TAG.len(), payload.len() + sig.len());
    }

    #[test]
    fn ssh_commit_block() {
        let o = parse(SSH_COMMIT).unwrap();
        assert_eq!(o.signature.unwrap().0, BlockKind::Ssh);
    }

    #[test]
    fn ambiguity_is_refused() {
        let tag = String::from_utf8(TAG.to_vec()).unwrap();
        // two signature blocks
        let two = format!("{tag}{}", &tag[tag.find("-----BEGIN").unwrap()..]);
        assert!(matches!(parse(two.as_bytes()), Err(VerifyError::Malformed { .. })));
        // trailing garbage
        let trailing = format!("{tag}trailing\n");
        assert!(matches!(parse(trailing.as_bytes()), Err(VerifyError::Malformed { .. })));
        // two gpgsig headers
        let commit = String::from_utf8(COMMIT.to_vec()).unwrap();
        let at = commit.find("gpgsig ").unwrap();
        let end = commit.find("\n\n").unwrap() + 1;
        let twice = format!("{}{}{}", &commit[..end], &commit[at..end], &commit[end..]);
        assert!(matches!(parse(twice.as_bytes()), Err(VerifyError::Malformed { .. })));
        // unknown gpgsig header
        let unknown = commit.replacen("gpgsig ", "gpgsig-md5 ", 1);
        assert!(matches!(parse(unknown.as_bytes()), Err(VerifyError::Malformed { .. })));
        // oversized
        let mut big = COMMIT.to_vec();
        big.resize(MAX_OBJECT_BYTES + 1, b'x');
        assert!(matches!(parse(&big), Err(VerifyError::Malformed { .. })));
        // not an object
        assert!(matches!(parse(b"blob"), Err(VerifyError::Malformed { .. })));
        assert!(matches!(parse(b""), Err(VerifyError::Malformed { .. })));
        // x509
        let x509 = tag.replace("BEGIN PGP SIGNATURE", "BEGIN SIGNED MESSAGE");
        assert!(matches!(
            parse(x509.as_bytes()),
            Err(VerifyError::UnsupportedAlgorithm { .. })
        ));
    }
}

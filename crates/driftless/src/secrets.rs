//! `driftless secrets`: encrypt, decrypt and edit SOPS files (age and OpenPGP) with the native
//! implementation in `driftless-sops`, following the `sops` command line where it can.
//!
//! * `encrypt --age RECIPIENT FILE` prints the SOPS file; without `--age`/`--pgp` the nearest
//!   `.sops.yaml` (from the current directory up, as sops does) supplies recipients and rules.
//! * `decrypt FILE` prints the plaintext; keys come from `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`, the
//!   sops default `~/.config/sops/age/keys.txt`, and `SOPS_PGP_KEY_FILE` (an unprotected armored
//!   OpenPGP secret key).
//! * `edit FILE` decrypts into a 0600 file in a private 0700 directory, runs `$SOPS_EDITOR`,
//!   `$EDITOR` or `vi`, and re-encrypts with the file's own data key, recipients and rules
//!   (`sops edit` semantics); an unchanged file is not rewritten. The temporary file is
//!   overwritten with zeros and removed on every path out, including SIGTERM/SIGHUP.
//!
//! Errors name the file, what failed and what to do; they never contain a decrypted value (the
//! library's errors carry key paths, never values), and a secret key passed where a recipient
//! belongs is not echoed.
//!
//! The subcommand takes its arguments raw and parses them with its own parser: its `--output
//! FILE` (as in sops) would otherwise collide with driftless's global `-o/--output FORMAT`.

use std::ffi::OsString;
use std::fs;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use driftless_sops::{EncryptOptions, EncryptionInfo, Format, Keys, MAX_INPUT_BYTES, SopsError, Zeroizing};
use serde_json::Value;

/// The raw arguments of `driftless secrets` (`encrypt|decrypt|edit ...`); see
/// `driftless secrets --help`.
#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct SecretsArgs {
    /// `encrypt`, `decrypt` or `edit` and their arguments (`driftless secrets --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    args: Vec<OsString>,
}

/// Encrypt, decrypt and edit SOPS files (age, OpenPGP) without the sops binary.
///
/// Keys for decrypt and edit: SOPS_AGE_KEY_FILE (a file of AGE-SECRET-KEY-1... lines),
/// SOPS_AGE_KEY, ~/.config/sops/age/keys.txt (as sops), and SOPS_PGP_KEY_FILE (an unprotected
/// ASCII-armored OpenPGP secret key, `gpg --export-secret-keys --armor`).
#[derive(Parser, Debug)]
#[command(
    name = "secrets",
    bin_name = "driftless secrets",
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct SecretsCli {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Encrypt FILE; the SOPS file goes to stdout (or --output FILE, or --in-place).
    ///
    /// Recipients come from --age/--pgp, else from the first creation rule of the nearest
    /// .sops.yaml whose path_regex matches FILE (age, pgp, key_groups with one group,
    /// encrypted_regex/unencrypted_regex/encrypted_suffix/unencrypted_suffix,
    /// mac_only_encrypted).
    Encrypt(EncryptArgs),
    /// Decrypt FILE (after verifying its MAC); the plaintext goes to stdout (or --output FILE).
    Decrypt(DecryptArgs),
    /// Decrypt FILE into a private temporary file, open $SOPS_EDITOR / $EDITOR / vi, and
    /// re-encrypt it for the same recipients with the same rules.
    Edit(EditArgs),
}

#[derive(Args, Debug)]
struct EncryptArgs {
    /// age recipient (age1..., as `age-keygen -y` prints it); repeatable or comma-separated.
    #[arg(
        long = "age",
        value_name = "RECIPIENT",
        env = "SOPS_AGE_RECIPIENTS",
        value_delimiter = ','
    )]
    age: Vec<String>,
    /// OpenPGP recipient: an ASCII-armored public key file, or fingerprints (comma-separated)
    /// whose public keys `gpg --export` provides; repeatable.
    #[arg(long = "pgp", value_name = "KEYFILE|FINGERPRINT", env = "SOPS_PGP_FP")]
    pgp: Vec<String>,
    #[command(flatten)]
    rule: RuleArgs,
    /// Compute the MAC over encrypted values only.
    #[arg(long)]
    mac_only_encrypted: bool,
    /// The sops config file (default: the nearest .sops.yaml from the current directory up).
    #[arg(long, value_name = "FILE", env = "SOPS_CONFIG")]
    config: Option<PathBuf>,
    /// Choose the format and the .sops.yaml creation rule by this path instead of FILE
    /// (useful with FILE `-`, standard input).
    #[arg(long, value_name = "PATH")]
    filename_override: Option<PathBuf>,
    #[command(flatten)]
    io: IoArgs,
}

/// At most one encryption rule (default: `--unencrypted-suffix _unencrypted`).
#[derive(Args, Debug, Default)]
#[group(multiple = false)]
struct RuleArgs {
    /// Encrypt only values under keys matching this regex (e.g. '^(data|stringData)$').
    #[arg(long, value_name = "REGEX")]
    encrypted_regex: Option<String>,
    /// Leave values under keys matching this regex in clear.
    #[arg(long, value_name = "REGEX")]
    unencrypted_regex: Option<String>,
    /// Encrypt only values under keys ending in this suffix.
    #[arg(long, value_name = "SUFFIX")]
    encrypted_suffix: Option<String>,
    /// Leave values under keys ending in this suffix in clear.
    #[arg(long, value_name = "SUFFIX")]
    unencrypted_suffix: Option<String>,
}

impl RuleArgs {
    fn any(&self) -> bool {
        self.encrypted_regex.is_some()
            || self.unencrypted_regex.is_some()
            || self.encrypted_suffix.is_some()
            || self.unencrypted_suffix.is_some()
    }
}

#[derive(Args, Debug)]
struct IoArgs {
    /// The file's format (default: from its name, as sops: .yaml/.yml, .json, .env, else binary).
    #[arg(long, value_enum, value_name = "TYPE")]
    input_type: Option<InputType>,
    /// Replace FILE with the result (atomically, keeping its permissions).
    #[arg(short = 'i', long, conflicts_with = "output")]
    in_place: bool,
    /// Write the result to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The file to read (`-` for standard input).
    file: PathBuf,
}

#[derive(Args, Debug)]
struct DecryptArgs {
    #[command(flatten)]
    io: IoArgs,
}

#[derive(Args, Debug)]
struct EditArgs {
    /// The file's format (default: from its name).
    #[arg(long, value_enum, value_name = "TYPE")]
    input_type: Option<InputType>,
    /// The encrypted file to edit.
    file: PathBuf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum InputType {
    Yaml,
    Json,
    Dotenv,
    Binary,
}

impl From<InputType> for Format {
    fn from(t: InputType) -> Format {
        match t {
            InputType::Yaml => Format::Yaml,
            InputType::Json => Format::Json,
            InputType::Dotenv => Format::Dotenv,
            InputType::Binary => Format::Binary,
        }
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Yaml => "YAML",
        Format::Json => "JSON",
        Format::Dotenv => "dotenv",
        Format::Binary => "binary",
    }
}

/// Runs `driftless secrets ...`; returns the exit code (0). Usage errors and `--help` exit
/// through clap (2 and 0).
pub async fn run(args: &SecretsArgs) -> Result<u8> {
    let argv = std::iter::once(OsString::from("driftless secrets")).chain(args.args.iter().cloned());
    let cli = SecretsCli::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    match cli.command {
        SecretsCommand::Encrypt(a) => encrypt_cmd(&a),
        SecretsCommand::Decrypt(a) => decrypt_cmd(&a),
        SecretsCommand::Edit(a) => edit_cmd(&a).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing files

fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

/// Reads a file (or stdin for `-`), refusing more than [`MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let name = shown(path);
    let mut buf = Zeroizing::new(Vec::new());
    let limit = MAX_INPUT_BYTES as u64 + 1;
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {name}"))?;
    } else {
        let f = fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("{name}: no such file"),
            _ => anyhow!("{name}: cannot open it: {e}"),
        })?;
        if f.metadata().is_ok_and(|m| m.is_dir()) {
            bail!("{name} is a directory, not a file");
        }
        f.take(limit)
            .read_to_end(&mut buf)
            .with_context(|| format!("{name}: cannot read it"))?;
    }
    if buf.len() > MAX_INPUT_BYTES {
        bail!(
            "{name} is larger than {} MiB, the limit for SOPS files",
            MAX_INPUT_BYTES >> 20
        );
    }
    Ok(buf)
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file. An existing file keeps its permissions (a symbolic link is
/// followed); a new one gets `new_mode`.
fn write_atomic(path: &Path, data: &[u8], new_mode: u32) -> Result<()> {
    let name = path.display().to_string();
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).with_context(|| format!("{name}: cannot resolve the symbolic link"))?
        }
        _ => path.to_path_buf(),
    };
    let mode = match fs::metadata(&target) {
        Ok(m) if m.is_dir() => bail!("{name} is a directory"),
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => new_mode,
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".driftless-")
        .tempfile_in(&dir)
        .with_context(|| format!("{name}: cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("{name}: cannot write it"))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .with_context(|| format!("{name}: cannot set permissions"))?;
    tmp.persist(&target)
        .map_err(|e| anyhow!("{name}: cannot replace it: {}", e.error))?;
    Ok(())
}

fn write_stdout(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(data).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow!("writing to standard output: {e}")),
    }
}

/// Where the result of encrypt/decrypt goes.
fn emit(io: &IoArgs, data: &[u8], new_mode: u32) -> Result<()> {
    if io.in_place {
        if io.file == Path::new("-") {
            bail!("--in-place needs a file, not standard input");
        }
        write_atomic(&io.file, data, new_mode)
    } else if let Some(out) = &io.output {
        write_atomic(out, data, new_mode)
    } else {
        write_stdout(data)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The sops default age identity file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
/// `~/.config/sops/age/keys.txt`.
fn default_age_key_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("sops/age/keys.txt"))
}

/// Where the keys were looked for, for error messages.
struct KeySources {
    keys: Keys,
    tried: Vec<String>,
}

fn load_keys() -> Result<KeySources> {
    let mut tried = Vec::new();
    let mut keys =
        Keys::from_env().map_err(|e| anyhow!("reading the age identities in SOPS_AGE_KEY / SOPS_AGE_KEY_FILE: {e}"))?;
    if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE") {
        tried.push(format!("SOPS_AGE_KEY_FILE ({})", PathBuf::from(path).display()));
    }
    if std::env::var_os("SOPS_AGE_KEY").is_some() {
        tried.push("SOPS_AGE_KEY".into());
    }
    if let Some(path) = default_age_key_file()
        && path.is_file()
    {
        let name = path.display().to_string();
        let text =
            Zeroizing::new(fs::read_to_string(&path).with_context(|| format!("reading age identities from {name}"))?);
        keys.add_age_identities(&text)
            .map_err(|e| anyhow!("reading age identities from {name}: {e}"))?;
        tried.push(name);
    }
    if let Some(path) = std::env::var_os("SOPS_PGP_KEY_FILE").filter(|v| !v.is_empty()) {
        let name = PathBuf::from(&path).display().to_string();
        let text = Zeroizing::new(
            fs::read_to_string(&path).with_context(|| format!("SOPS_PGP_KEY_FILE {name}: cannot read it"))?,
        );
        keys.add_pgp_secret_key(&text).map_err(|e| {
            anyhow!(
                "SOPS_PGP_KEY_FILE {name}: {e} (it must be an unprotected ASCII-armored secret key, \
                 as `gpg --export-secret-keys --armor FINGERPRINT` writes it)"
            )
        })?;
        tried.push(format!("SOPS_PGP_KEY_FILE ({name})"));
    }
    Ok(KeySources { keys, tried })
}

const KEY_HELP: &str = "set SOPS_AGE_KEY_FILE to an age identity file (AGE-SECRET-KEY-1... lines) of one of its \
                        recipients, or SOPS_AGE_KEY to the identity itself, or SOPS_PGP_KEY_FILE to an unprotected \
                        armored OpenPGP secret key";

fn recipients_text(info: &EncryptionInfo) -> String {
    let mut parts = Vec::new();
    if !info.age_recipients.is_empty() {
        parts.push(format!("age {}", info.age_recipients.join(", ")));
    }
    if !info.pgp_fingerprints.is_empty() {
        parts.push(format!("OpenPGP {}", info.pgp_fingerprints.join(", ")));
    }
    if !info.other_key_services.is_empty() {
        parts.push(info.other_key_services.join(", "));
    }
    if parts.is_empty() {
        "no recipients".into()
    } else {
        parts.join("; ")
    }
}

/// A person-readable error for a failed decryption of `name`. Never contains plaintext: the
/// library's errors carry key paths and counts only.
fn decrypt_error(name: &str, format: Format, text: &[u8], e: SopsError, keys: &KeySources) -> anyhow::Error {
    let fmt = format_name(format);
    match e {
        SopsError::NoMatchingKey { .. } => {
            let info = driftless_sops::encryption_info(text, format).ok();
            let whom = info.as_ref().map(recipients_text).unwrap_or_default();
            let what = match &info {
                Some(i) if !i.age_recipients.is_empty() && i.pgp_fingerprints.is_empty() => "no age identity matches",
                Some(i) if i.age_recipients.is_empty() && !i.pgp_fingerprints.is_empty() => {
                    "no OpenPGP secret key matches"
                }
                _ => "none of the available keys matches",
            };
            let have = format!(
                "{} age identities and {} OpenPGP secret keys were loaded{}",
                keys.keys.age_identity_count(),
                keys.keys.pgp_key_count(),
                if keys.tried.is_empty() {
                    " (none of SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_PGP_KEY_FILE is set)".to_string()
                } else {
                    format!(" from {}", keys.tried.join(", "))
                }
            );
            anyhow!("{name}: cannot decrypt: {what}; the file is encrypted for {whom}; {have}; {KEY_HELP}")
        }
        SopsError::MacMismatch => anyhow!(
            "{name}: refusing to decrypt: MAC mismatch, the file was changed after it was encrypted (edited by \
             hand, merged, or tampered with); restore it from version control or encrypt it again"
        ),
        SopsError::ValueAuthentication { path } => anyhow!(
            "{name}: refusing to decrypt: the encrypted value at {path} failed authentication (tampered with, \
             moved, or copied from another file); restore the file from version control"
        ),
        SopsError::NotEncrypted => anyhow!(
            "{name} is not SOPS-encrypted (read as {fmt}, it has no `sops` metadata with `mac` and `version`); \
             if it is another format pass --input-type"
        ),
        e @ SopsError::Parse { .. } => {
            anyhow!("{name}: {e} (read as {fmt} because of its name; pass --input-type if it is another format)")
        }
        e => anyhow!("{name}: cannot decrypt: {e}"),
    }
}

fn decrypt_with_keys(name: &str, format: Format, text: &[u8], keys: &KeySources) -> Result<Zeroizing<Vec<u8>>> {
    if keys.keys.is_empty() && driftless_sops::is_encrypted(text, format) {
        let whom = driftless_sops::encryption_info(text, format)
            .map(|i| format!("; the file is encrypted for {}", recipients_text(&i)))
            .unwrap_or_default();
        bail!("{name}: cannot decrypt: no decryption key is available{whom}; {KEY_HELP}");
    }
    driftless_sops::decrypt(text, format, &keys.keys).map_err(|e| decrypt_error(name, format, text, e, keys))
}

// ---------------------------------------------------------------------------------------------
// decrypt

fn decrypt_cmd(a: &DecryptArgs) -> Result<u8> {
    let name = shown(&a.io.file);
    let format =
        a.io.input_type
            .map(Format::from)
            .unwrap_or_else(|| Format::from_path(&a.io.file));
    let text = read_input(&a.io.file)?;
    let keys = load_keys()?;
    let plain = decrypt_with_keys(&name, format, &text, &keys)?;
    emit(&a.io, &plain, 0o600)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// encrypt

/// What a `.sops.yaml` creation rule contributes.
#[derive(Debug, Default)]
struct CreationRule {
    age: Vec<String>,
    pgp_fingerprints: Vec<String>,
    encrypted_regex: Option<String>,
    unencrypted_regex: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_suffix: Option<String>,
    mac_only_encrypted: bool,
}

/// The nearest `.sops.yaml` from the current directory up (100 levels, as sops).
fn find_config() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    for _ in 0..100 {
        let candidate = dir.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            break;
        }
    }
    None
}

/// A string or a list of strings (sops accepts both for `age` and `pgp`), split on commas.
fn key_list(v: Option<&Value>, what: &str, config: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        out.extend(
            s.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    };
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => push(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => push(s),
                    _ => bail!("{config}: `{what}` must be a string or a list of strings"),
                }
            }
        }
        Some(_) => bail!("{config}: `{what}` must be a string or a list of strings"),
    }
    Ok(out)
}

fn opt_str(rule: &serde_json::Map<String, Value>, key: &str, config: &str) -> Result<Option<String>> {
    match rule.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => bail!("{config}: `{key}` must be a string"),
    }
}

const OTHER_KEY_SERVICES: [&str; 6] = [
    "kms",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hc_vault",
    "hckms",
];

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Collects age and pgp keys of a key group (with `merge`), refusing key services we cannot use.
fn collect_group(group: &Value, out: &mut CreationRule, config: &str, depth: usize) -> Result<()> {
    let Value::Object(g) = group else {
        bail!("{config}: an entry of `key_groups` is not a map");
    };
    if depth > 16 {
        bail!("{config}: `merge` is nested too deeply");
    }
    for service in OTHER_KEY_SERVICES {
        if non_empty(g.get(service)) {
            bail!(
                "{config}: the matching creation rule uses `{service}`, which driftless cannot use (age and pgp only)"
            );
        }
    }
    out.age.extend(key_list(g.get("age"), "key_groups.age", config)?);
    out.pgp_fingerprints.extend(
        key_list(g.get("pgp"), "key_groups.pgp", config)?
            .into_iter()
            .map(|f| f.replace(' ', "")),
    );
    match g.get("merge") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                collect_group(item, out, config, depth + 1)?;
            }
        }
        Some(_) => bail!("{config}: `merge` must be a list"),
    }
    Ok(())
}

/// Reads `config` and returns the first creation rule whose `path_regex` matches `file` (an
/// absolute path, compared relative to the config's directory as sops does), or `None`.
fn creation_rule(config: &Path, file: &Path) -> Result<Option<CreationRule>> {
    let name = config.display().to_string();
    let text = fs::read_to_string(config).with_context(|| format!("{name}: cannot read the sops config"))?;
    let doc: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(&text).map_err(|e| anyhow!("{name}: not a valid sops config (YAML): {e}"))?
    };
    let rules = match doc.get("creation_rules") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(r)) => r,
        Some(_) => bail!("{name}: `creation_rules` must be a list"),
    };
    let config_dir = std::path::absolute(config.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("{name}: cannot resolve its directory"))?;
    let file_str = file.to_string_lossy();
    let prefix = format!("{}/", config_dir.to_string_lossy().trim_end_matches('/'));
    let relative = file_str.strip_prefix(prefix.as_str()).unwrap_or(&file_str);
    for (i, rule) in rules.iter().enumerate() {
        let Value::Object(r) = rule else {
            bail!("{name}: creation rule {} is not a map", i + 1);
        };
        if let Some(pattern) = opt_str(r, "path_regex", &name)? {
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|_| anyhow!("{name}: creation rule {}: invalid path_regex {pattern:?}", i + 1))?;
            if !re.is_match(relative) {
                continue;
            }
        }
        let mut out = CreationRule {
            encrypted_regex: opt_str(r, "encrypted_regex", &name)?,
            unencrypted_regex: opt_str(r, "unencrypted_regex", &name)?,
            encrypted_suffix: opt_str(r, "encrypted_suffix", &name)?,
            unencrypted_suffix: opt_str(r, "unencrypted_suffix", &name)?,
            mac_only_encrypted: matches!(r.get("mac_only_encrypted"), Some(Value::Bool(true))),
            ..Default::default()
        };
        for key in ["encrypted_comment_regex", "unencrypted_comment_regex"] {
            if opt_str(r, key, &name)?.is_some() {
                bail!("{name}: creation rule {}: `{key}` is not supported by driftless", i + 1);
            }
        }
        match r.get("key_groups") {
            Some(Value::Array(groups)) if !groups.is_empty() => {
                if groups.len() > 1 {
                    bail!(
                        "{name}: creation rule {}: {} key groups (Shamir secret sharing) are not supported; \
                         use one group",
                        i + 1,
                        groups.len()
                    );
                }
                collect_group(&groups[0], &mut out, &name, 0)?;
            }
            _ => {
                let mut top = serde_json::Map::new();
                for key in ["age", "pgp"].into_iter().chain(OTHER_KEY_SERVICES) {
                    if let Some(v) = r.get(key) {
                        top.insert(key.to_string(), v.clone());
                    }
                }
                collect_group(&Value::Object(top), &mut out, &name, 0)?;
            }
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// Whether `s` looks like an OpenPGP fingerprint or key id (hex, 16 or more digits).
fn is_fingerprint(s: &str) -> bool {
    let s = s.strip_prefix("0x").unwrap_or(s);
    s.len() >= 16 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The armored public key for `fp` from the GnuPG keyring (`gpg --export --armor`).
fn gpg_export(fp: &str, origin: &str) -> Result<String> {
    let out = std::process::Command::new("gpg")
        .args(["--batch", "--armor", "--export", fp])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            anyhow!(
                "OpenPGP key {fp} ({origin}): its public key comes from the GnuPG keyring, but gpg cannot be run \
                 ({e}); install gnupg or pass --pgp KEYFILE with the armored public key"
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !text.contains("BEGIN PGP PUBLIC KEY BLOCK") {
        bail!(
            "OpenPGP key {fp} ({origin}) is not in the GnuPG keyring (`gpg --export {fp}` printed nothing): import \
             it with `gpg --import`, or pass --pgp KEYFILE with the armored public key"
        );
    }
    Ok(text)
}

/// Turns `--pgp` values into armored public keys: a readable file is read, anything else is
/// taken as comma-separated fingerprints.
fn pgp_public_keys(values: &[String]) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for v in values.iter().filter(|v| !v.trim().is_empty()) {
        let path = Path::new(v);
        if path.is_file() {
            let text = fs::read_to_string(path).with_context(|| format!("--pgp {v}: cannot read it"))?;
            if text.contains("PRIVATE KEY BLOCK") {
                bail!("--pgp {v}: this is a secret key; pass the public key (`gpg --export --armor FINGERPRINT`)");
            }
            if !text.contains("BEGIN PGP PUBLIC KEY BLOCK") {
                bail!("--pgp {v}: not an ASCII-armored OpenPGP public key (`gpg --export --armor FINGERPRINT`)");
            }
            keys.push(text);
            continue;
        }
        for fp in v.split(',').map(|f| f.replace(' ', "")).filter(|f| !f.is_empty()) {
            if !is_fingerprint(&fp) {
                bail!("--pgp {v}: no such file, and not an OpenPGP fingerprint");
            }
            keys.push(gpg_export(&fp, "--pgp")?);
        }
    }
    Ok(keys)
}

/// Which age recipient is malformed, described without echoing anything that is not a
/// recipient (someone may paste an AGE-SECRET-KEY by mistake).
fn bad_recipient(recipients: &[String]) -> Option<String> {
    for (i, r) in recipients.iter().enumerate() {
        let probe = EncryptOptions {
            age_recipients: vec![r.clone()],
            ..Default::default()
        };
        if driftless_sops::encrypt(b"{}", Format::Json, &probe).is_err() {
            let lower = r.to_ascii_lowercase();
            return Some(if lower.starts_with("age-secret-key") {
                format!(
                    "age recipient #{} is a SECRET key (not shown); pass the public key that `age-keygen -y` prints",
                    i + 1
                )
            } else if lower.starts_with("age1") && r.len() < 200 {
                format!("age recipient {r:?} is not a valid X25519 recipient")
            } else {
                format!(
                    "age recipient #{} is not an age X25519 recipient (age1..., as `age-keygen -y` prints it)",
                    i + 1
                )
            });
        }
    }
    None
}

fn encrypt_cmd(a: &EncryptArgs) -> Result<u8> {
    let name = shown(&a.io.file);
    let rule_path = a.filename_override.as_deref().unwrap_or(&a.io.file);
    let format =
        a.io.input_type
            .map(Format::from)
            .unwrap_or_else(|| Format::from_path(rule_path));
    let plain = read_input(&a.io.file)?;
    if driftless_sops::is_encrypted(&plain, format) {
        bail!("{name} is already SOPS-encrypted; change it with `driftless secrets edit {name}`");
    }

    let age: Vec<String> = a
        .age
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let pgp_given = a.pgp.iter().any(|v| !v.trim().is_empty());
    let config = a.config.clone().or_else(find_config);
    let abs = std::path::absolute(rule_path).with_context(|| format!("{name}: cannot resolve its path"))?;
    let rule = match &config {
        Some(c) => creation_rule(c, &abs)?,
        None => None,
    };

    let mut opts = EncryptOptions::default();
    if age.is_empty() && !pgp_given {
        let Some(rule) = &rule else {
            bail!(match &config {
                Some(c) => format!(
                    "{name}: no recipients: no --age/--pgp given and no creation rule in {} matches {}; add a rule \
                     (path_regex, age) or pass --age RECIPIENT",
                    c.display(),
                    abs.display()
                ),
                None => format!(
                    "{name}: no recipients: pass --age RECIPIENT (age1..., from `age-keygen -y KEYFILE`) or \
                     --pgp KEYFILE, or create a .sops.yaml with creation_rules"
                ),
            });
        };
        let origin = config.as_ref().map(|c| c.display().to_string()).unwrap_or_default();
        if rule.age.is_empty() && rule.pgp_fingerprints.is_empty() {
            bail!("{name}: the creation rule in {origin} that matches it names no age or pgp recipients");
        }
        opts.age_recipients = rule.age.clone();
        for fp in &rule.pgp_fingerprints {
            opts.pgp_public_keys.push(gpg_export(fp, &origin)?);
        }
    } else {
        opts.age_recipients = age;
        opts.pgp_public_keys = pgp_public_keys(&a.pgp)?;
    }
    if a.rule.any() {
        opts.encrypted_regex = a.rule.encrypted_regex.clone();
        opts.unencrypted_regex = a.rule.unencrypted_regex.clone();
        opts.encrypted_suffix = a.rule.encrypted_suffix.clone();
        opts.unencrypted_suffix = a.rule.unencrypted_suffix.clone();
    } else if let Some(r) = &rule {
        opts.encrypted_regex = r.encrypted_regex.clone();
        opts.unencrypted_regex = r.unencrypted_regex.clone();
        opts.encrypted_suffix = r.encrypted_suffix.clone();
        opts.unencrypted_suffix = r.unencrypted_suffix.clone();
    }
    opts.mac_only_encrypted = a.mac_only_encrypted || rule.as_ref().is_some_and(|r| r.mac_only_encrypted);
    if format == Format::Binary {
        // sops: a binary file is one value, always encrypted; rules would only risk leaving it in clear.
        let had_rule = opts.encrypted_regex.is_some()
            || opts.unencrypted_regex.is_some()
            || opts.encrypted_suffix.is_some()
            || opts.unencrypted_suffix.is_some();
        if had_rule {
            eprintln!("warning: {name}: encryption rules are ignored for a binary file (the whole file is encrypted)");
        }
        opts.encrypted_regex = None;
        opts.unencrypted_regex = None;
        opts.encrypted_suffix = None;
        opts.unencrypted_suffix = None;
        opts.mac_only_encrypted = false;
    }

    let out = driftless_sops::encrypt(&plain, format, &opts).map_err(|e| match e {
        SopsError::InvalidKey(_) if bad_recipient(&opts.age_recipients).is_some() => {
            anyhow!(
                "{name}: cannot encrypt: {}",
                bad_recipient(&opts.age_recipients).unwrap_or_default()
            )
        }
        e @ SopsError::Parse { .. } => anyhow!(
            "{name}: {e} (read as {} because of its name; pass --input-type if it is another format)",
            format_name(format)
        ),
        e => anyhow!("{name}: cannot encrypt: {e}"),
    })?;
    emit(&a.io, &out, 0o644)?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// edit

/// The private temporary copy of the plaintext: overwritten with zeros and removed on drop.
struct PlainTemp {
    dir: Option<tempfile::TempDir>,
    file: PathBuf,
}

impl PlainTemp {
    fn create(original: &Path, plain: &[u8]) -> Result<PlainTemp> {
        let dir = tempfile::Builder::new()
            .prefix("driftless-edit-")
            .tempdir()
            .context("cannot create a private temporary directory")?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .context("cannot make the temporary directory private")?;
        // Keep the file's name so editors recognise the format.
        let base = original
            .file_name()
            .map(|n| n.to_string_lossy().replace(['/', '\0'], "_"))
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .unwrap_or_else(|| "secret".into());
        let file = dir.path().join(base);
        let this = PlainTemp { dir: Some(dir), file };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&this.file)
            .context("cannot create the temporary file")?;
        f.write_all(plain)
            .and_then(|()| f.sync_all())
            .context("cannot write the temporary file")?;
        Ok(this)
    }

    fn read(&self) -> Result<Zeroizing<Vec<u8>>> {
        read_input(&self.file).context("reading the edited temporary file")
    }
}

impl Drop for PlainTemp {
    fn drop(&mut self) {
        // Best effort: overwrite what is at the path now (editors may have replaced the inode),
        // then remove the directory with everything the editor left in it (swap files, backups).
        if let Ok(meta) = fs::symlink_metadata(&self.file)
            && meta.is_file()
            && let Ok(mut f) = fs::OpenOptions::new().write(true).open(&self.file)
        {
            let zeros = vec![0u8; 64 * 1024];
            let mut left = meta.len();
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                if f.write_all(&zeros[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
            let _ = f.sync_all();
        }
        let _ = fs::remove_file(&self.file);
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// `$SOPS_EDITOR`, `$EDITOR`, else `vi`, split on whitespace (`code --wait` works).
fn editor_command() -> Vec<String> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Ok(v) = std::env::var(var) {
            let words: Vec<String> = v.split_whitespace().map(String::from).collect();
            if !words.is_empty() {
                return words;
            }
        }
    }
    vec!["vi".into()]
}

/// Runs the editor on `file`. SIGINT is left to the editor (Ctrl-C inside vi must not abandon
/// the edit); SIGTERM or SIGHUP stop the editor and abandon the edit, so the plaintext is
/// still removed.
async fn run_editor(file: &Path, name: &str) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing a signal handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing a signal handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing a signal handler")?;
    let cmd = editor_command();
    let mut child = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow!(
                "{name}: cannot start the editor `{}`: {e}; set EDITOR (or SOPS_EDITOR); the file was left unchanged",
                cmd[0]
            )
        })?;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.with_context(|| format!("{name}: waiting for the editor"))?;
                if !status.success() {
                    bail!("{name}: the editor `{}` exited with {status}; the file was left unchanged", cmd[0]);
                }
                return Ok(());
            }
            _ = int.recv() => {}
            _ = term.recv() => break,
            _ = hup.recv() => break,
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    bail!("{name}: interrupted by a signal; the edit was abandoned and the file left unchanged")
}

/// Asks on the terminal whether to re-open the editor after `problem`.
fn ask_reopen(problem: &str) -> bool {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return false;
    }
    eprintln!("{problem}");
    eprint!("Press Enter to return to the editor, or type q and Enter to abandon the edit: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => false,
        Ok(_) => !line.trim().eq_ignore_ascii_case("q"),
    }
}

async fn edit_cmd(a: &EditArgs) -> Result<u8> {
    let name = shown(&a.file);
    if a.file == Path::new("-") {
        bail!("edit needs a file, not standard input");
    }
    let format = a
        .input_type
        .map(Format::from)
        .unwrap_or_else(|| Format::from_path(&a.file));
    let original = read_input(&a.file).map_err(|e| {
        if !a.file.exists() {
            anyhow!("{name}: no such file; create it in plaintext and run `driftless secrets encrypt --in-place`")
        } else {
            e
        }
    })?;
    if !driftless_sops::is_encrypted(&original, format) {
        bail!(
            "{name} is not SOPS-encrypted (read as {}); encrypt it first with `driftless secrets encrypt --in-place \
             {name}`, or pass --input-type if it is another format",
            format_name(format)
        );
    }
    let keys = load_keys()?;
    let plain = decrypt_with_keys(&name, format, &original, &keys)?;
    let temp = PlainTemp::create(&a.file, &plain)?;
    loop {
        run_editor(&temp.file, &name).await?;
        let edited = temp.read()?;
        if edited.as_slice() == plain.as_slice() {
            eprintln!("{name}: not changed; the file was left as it is");
            return Ok(0);
        }
        match driftless_sops::reencrypt(&original, &edited, format, &keys.keys) {
            Ok(out) => {
                write_atomic(&a.file, &out, 0o644)?;
                return Ok(0);
            }
            Err(e @ (SopsError::Parse { .. } | SopsError::Structure(_) | SopsError::UnsupportedValue { .. })) => {
                let problem = format!("{name}: the edited content is not valid {}: {e}", format_name(format));
                if !ask_reopen(&problem) {
                    bail!("{problem}; the file was left unchanged");
                }
            }
            Err(SopsError::AlreadyEncrypted) => {
                let problem = format!("{name}: the edited content has a top-level `sops` key, which is reserved");
                if !ask_reopen(&problem) {
                    bail!("{problem}; the file was left unchanged");
                }
            }
            Err(e) => bail!("{name}: cannot re-encrypt: {e}; the file was left unchanged"),
        }
    }
}

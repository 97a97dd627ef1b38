//! Credentials for fetching: https basic auth, an SSH key with its known_hosts, a custom CA.
//!
//! Secrets live in [`Secret`], whose `Debug` prints `***` and which has no `Display`, so a
//! stray `{:?}` of a [`Credentials`] cannot leak them. Where a credential came from (an env var,
//! a file, per-repo settings) is remembered so that an authentication error can say what to
//! check without saying what the secret is.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::SourceError;

/// Env var with the https user name.
pub const ENV_USERNAME: &str = "DRIFTLESS_GIT_USERNAME";
/// Env var with the https password or token.
pub const ENV_PASSWORD: &str = "DRIFTLESS_GIT_PASSWORD";
/// Env var naming a file that holds the https password or token.
pub const ENV_PASSWORD_FILE: &str = "DRIFTLESS_GIT_PASSWORD_FILE";
/// Env var naming the SSH private key file.
pub const ENV_SSH_KEY_FILE: &str = "DRIFTLESS_GIT_SSH_KEY_FILE";
/// Env var naming the SSH known_hosts file.
pub const ENV_KNOWN_HOSTS_FILE: &str = "DRIFTLESS_GIT_KNOWN_HOSTS_FILE";
/// Env var naming a PEM file of extra CA certificates trusted for https.
pub const ENV_CA_FILE: &str = "DRIFTLESS_GIT_CA_FILE";

/// A secret string. `Debug` shows `***`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for handing to the transport only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// https basic authentication (a token usually goes in `password`).
#[derive(Clone, Debug)]
pub struct BasicAuth {
    /// User name (many hosts accept any non-empty name with a token).
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

/// SSH authentication through the system `ssh` binary.
#[derive(Clone, Debug)]
pub struct SshAuth {
    /// Private key file (`ssh -i`).
    pub private_key: PathBuf,
    /// known_hosts file; host keys are checked strictly against it.
    pub known_hosts: PathBuf,
}

/// Everything needed to authenticate one repository. `Credentials::default()` is anonymous.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// https basic auth.
    pub basic: Option<BasicAuth>,
    /// SSH key and known_hosts.
    pub ssh: Option<SshAuth>,
    /// Extra CA certificates (PEM) trusted for https, e.g. for an internal Git server.
    pub ca_file: Option<PathBuf>,
    /// Where these came from, for error hints: e.g. `DRIFTLESS_GIT_PASSWORD_FILE`.
    pub origin: Option<String>,
}

impl Credentials {
    /// No credentials (public repositories, `git://`, local paths).
    pub fn anonymous() -> Credentials {
        Credentials::default()
    }

    /// https basic auth given directly, e.g. from per-repo settings.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            basic: Some(BasicAuth {
                username: username.into(),
                password: Secret::new(password),
            }),
            origin: Some("the repository's username and password settings".into()),
            ..Credentials::default()
        }
    }

    /// An SSH private key and the known_hosts file to check the server against.
    pub fn ssh(private_key: impl Into<PathBuf>, known_hosts: impl Into<PathBuf>) -> Credentials {
        Credentials {
            ssh: Some(SshAuth {
                private_key: private_key.into(),
                known_hosts: known_hosts.into(),
            }),
            origin: Some("the repository's SSH key and known_hosts settings".into()),
            ..Credentials::default()
        }
    }

    /// Trust the CA certificates in `pem_file` for https (in addition to the system roots).
    pub fn with_ca_file(mut self, pem_file: impl Into<PathBuf>) -> Credentials {
        self.ca_file = Some(pem_file.into());
        self
    }

    /// Read a password from a file (trailing newline removed), as mounted Kubernetes secrets are.
    pub fn basic_from_file(username: impl Into<String>, password_file: &Path) -> Result<Credentials, SourceError> {
        let password = read_secret_file(password_file)?;
        let mut c = Credentials::basic(username, password);
        c.origin = Some(format!("the password file {}", password_file.display()));
        Ok(c)
    }

    /// Credentials from the process environment: `DRIFTLESS_GIT_USERNAME` with
    /// `DRIFTLESS_GIT_PASSWORD` or `DRIFTLESS_GIT_PASSWORD_FILE`; `DRIFTLESS_GIT_SSH_KEY_FILE`
    /// with `DRIFTLESS_GIT_KNOWN_HOSTS_FILE`; `DRIFTLESS_GIT_CA_FILE`. Unset means anonymous.
    pub fn from_env() -> Result<Credentials, SourceError> {
        Credentials::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Credentials::from_env`], with variables looked up through `lookup` (for tests and
    /// for per-repo settings stored as key/value pairs).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Credentials, SourceError> {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let mut c = Credentials::default();
        let mut origins = Vec::new();
        let password = match (get(ENV_PASSWORD), get(ENV_PASSWORD_FILE)) {
            (Some(_), Some(_)) => {
                return Err(SourceError::Credentials(format!(
                    "both {ENV_PASSWORD} and {ENV_PASSWORD_FILE} are set; set only one"
                )));
            }
            (Some(p), None) => {
                origins.push(ENV_PASSWORD.to_string());
                Some(p)
            }
            (None, Some(f)) => {
                origins.push(ENV_PASSWORD_FILE.to_string());
                Some(read_secret_file(Path::new(&f))?)
            }
            (None, None) => None,
        };
        match (get(ENV_USERNAME), password) {
            (Some(u), Some(p)) => {
                c.basic = Some(BasicAuth {
                    username: u,
                    password: Secret::new(p),
                });
                origins.insert(0, ENV_USERNAME.to_string());
            }
            // Token-only setups: most hosts accept any user name with a token.
            (None, Some(p)) => {
                c.basic = Some(BasicAuth {
                    username: "git".into(),
                    password: Secret::new(p),
                });
            }
            (Some(_), None) => {
                return Err(SourceError::Credentials(format!(
                    "{ENV_USERNAME} is set but neither {ENV_PASSWORD} nor {ENV_PASSWORD_FILE} is"
                )));
            }
            (None, None) => {}
        }
        match (get(ENV_SSH_KEY_FILE), get(ENV_KNOWN_HOSTS_FILE)) {
            (Some(k), Some(h)) => {
                c.ssh = Some(SshAuth {
                    private_key: k.into(),
                    known_hosts: h.into(),
                });
                origins.push(ENV_SSH_KEY_FILE.to_string());
                origins.push(ENV_KNOWN_HOSTS_FILE.to_string());
            }
            (Some(_), None) => {
                return Err(SourceError::Credentials(format!(
                    "{ENV_SSH_KEY_FILE} is set without {ENV_KNOWN_HOSTS_FILE}; host keys are always checked"
                )));
            }
            (None, Some(h)) => {
                // known_hosts alone is fine: the ssh agent or default keys may authenticate.
                c.ssh = None;
                let _ = h;
            }
            (None, None) => {}
        }
        c.ca_file = get(ENV_CA_FILE).map(PathBuf::from);
        if !origins.is_empty() {
            c.origin = Some(origins.join(" and "));
        }
        Ok(c)
    }

    /// What a person should check after an authentication failure.
    pub(crate) fn hint(&self, kind: crate::UrlKind) -> String {
        use crate::UrlKind;
        match (kind, &self.origin) {
            (UrlKind::Ssh, _) if self.ssh.is_none() => format!(
                "no SSH key configured; set {ENV_SSH_KEY_FILE} and {ENV_KNOWN_HOSTS_FILE} or the repository's SSH key settings"
            ),
            (UrlKind::Ssh, Some(o)) => {
                format!("check {o} (the key must be authorized on the server and the host key listed in known_hosts)")
            }
            (UrlKind::Http, _) if self.basic.is_some() => {
                "credentials are never sent over plain http; use an https:// URL".to_string()
            }
            (_, _) if self.basic.is_none() => format!(
                "the server asks for credentials and none are configured; set {ENV_USERNAME} and {ENV_PASSWORD_FILE} (or the repository's credentials)"
            ),
            (_, Some(o)) => format!("check {o}"),
            (_, None) => "check the configured credentials".to_string(),
        }
    }

    /// Secrets to scrub from any message that came from git, gix or ssh.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(b) = &self.basic
            && !b.password.expose().is_empty()
        {
            v.push(b.password.expose().to_string());
        }
        v
    }
}

fn read_secret_file(path: &Path) -> Result<String, SourceError> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| SourceError::Credentials(format!("cannot read {}: {e}", path.display())))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::basic("alice", "hunter2");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("***"));
    }

    #[test]
    fn from_lookup_reads_password_file_and_names_it_in_hints() {
        let dir = std::env::temp_dir().join(format!("driftless-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "tok3n\n").unwrap();
        let vars: HashMap<&str, String> = [
            (ENV_USERNAME, "bob".to_string()),
            (ENV_PASSWORD_FILE, f.display().to_string()),
        ]
        .into();
        let c = Credentials::from_lookup(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(c.basic.as_ref().unwrap().password.expose(), "tok3n");
        let hint = c.hint(crate::UrlKind::Https);
        assert!(hint.contains(ENV_PASSWORD_FILE), "{hint}");
        assert!(!hint.contains("tok3n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_lookup_rejects_half_configurations() {
        let only_user = |k: &str| (k == ENV_USERNAME).then(|| "u".to_string());
        assert!(Credentials::from_lookup(only_user).is_err());
        let key_without_hosts = |k: &str| (k == ENV_SSH_KEY_FILE).then(|| "/k".to_string());
        assert!(Credentials::from_lookup(key_without_hosts).is_err());
        let none = |_: &str| None;
        let c = Credentials::from_lookup(none).unwrap();
        assert!(c.basic.is_none() && c.ssh.is_none());
    }
}

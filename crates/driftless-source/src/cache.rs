//! The mirror cache and fetching.
//!
//! Layout under the cache root (all names are hashes of the normalised URL, never a path
//! component a user controls, so one application cannot steer reads into another's files):
//!
//! ```text
//! <root>/mirrors/<key>.git   bare mirror: refs/heads/* and refs/tags/* as on the remote
//! <root>/locks/<key>.lock    advisory file lock held while fetching <key>
//! <root>/tmp/                first clones are built here and renamed into place
//! ```
//!
//! A fetch takes an exclusive `flock` on the URL's lock file (which also serialises threads of
//! one process, since each opens its own file description), so concurrent callers for the same
//! URL queue up instead of corrupting the mirror, while different URLs fetch in parallel.
//!
//! The fetch itself runs on a worker thread so that the caller gets [`SourceError::Timeout`]
//! when the configured time runs out. The worker is then told to stop through gix's interrupt
//! flag; a transfer blocked on a silent socket may linger until the socket gives up, and it keeps
//! holding the lock until then, which is what we want (no second fetch writing beside it).
//!
//! The cache is shared by everything using the same URL. Deciding which application may use
//! which URL, and with which credentials, is the engine's job: a mirror fetched with one app's
//! credentials is readable by any caller that can name its URL.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;

use crate::credentials::Credentials;
use crate::url::{RepoUrl, UrlKind};
use crate::{Limits, SourceError};

/// A cache of bare mirrors of remote repositories, with ref resolution and tree reads.
///
/// All methods block; from async code call them in `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct GitCache {
    root: PathBuf,
    timeout: Duration,
    limits: Limits,
    shared: Arc<Shared>,
}

/// What clones of a [`GitCache`] share: decoded trees.
#[derive(Default)]
struct Shared {
    trees: crate::tree::TreeCache,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl GitCache {
    /// A cache rooted at `root` (created on first fetch), with a 120 s fetch timeout and
    /// default [`Limits`].
    pub fn new(root: PathBuf) -> GitCache {
        install_tls_provider();
        GitCache {
            root,
            timeout: Duration::from_secs(120),
            limits: Limits::default(),
            shared: Arc::default(),
        }
    }

    /// Set the fetch timeout (including time spent waiting for another fetch of the same URL).
    pub fn with_timeout(mut self, timeout: Duration) -> GitCache {
        self.timeout = timeout;
        self
    }

    /// Set the size limits for reading trees.
    pub fn with_limits(mut self, limits: Limits) -> GitCache {
        self.limits = limits;
        self
    }

    /// The size limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the mirror of `url` lives (whether or not it was fetched yet).
    pub fn mirror_path(&self, url: &str) -> Result<PathBuf, SourceError> {
        let u = RepoUrl::parse(url)?;
        Ok(self.mirror_dir(&u))
    }

    pub(crate) fn mirror_dir(&self, u: &RepoUrl) -> PathBuf {
        self.root.join("mirrors").join(format!("{}.git", u.cache_key()))
    }

    /// Decoded trees shared by all reads.
    pub(crate) fn trees(&self) -> &crate::tree::TreeCache {
        &self.shared.trees
    }

    /// Open the mirror of `url` for reading.
    ///
    /// Opened mirrors are kept per thread (gix's repository handle cannot cross threads in
    /// this build) and handed out again: opening one — path canonicalization, config files,
    /// pack indices — cost more than most reads made with it, and every app's reconcile
    /// makes several. A kept handle sees later fetches: references are read from disk on
    /// every lookup, and the object database looks for new packs when an object is missing.
    pub(crate) fn open(&self, u: &RepoUrl) -> Result<gix::Repository, SourceError> {
        /// Mirrors kept per thread before the thread's set starts over.
        const KEPT_PER_THREAD: usize = 16;
        thread_local! {
            static OPENED: std::cell::RefCell<std::collections::HashMap<PathBuf, gix::Repository>> =
                std::cell::RefCell::new(std::collections::HashMap::new());
        }
        let dir = self.mirror_dir(u);
        if !dir.join("HEAD").exists() {
            return Err(SourceError::NotFetched { url: u.display.clone() });
        }
        if let Some(repo) = OPENED.with(|o| o.borrow().get(&dir).cloned()) {
            return Ok(repo);
        }
        let repo = open_isolated(&dir, &[]).map_err(|e| SourceError::Git {
            url: u.display.clone(),
            message: error_chain(&*e, &[]),
        })?;
        OPENED.with(|o| {
            let mut o = o.borrow_mut();
            if o.len() >= KEPT_PER_THREAD {
                o.clear();
            }
            o.insert(dir, repo.clone());
        });
        Ok(repo)
    }

    /// Clone `url` into the cache, or fetch into the existing mirror: every branch and tag,
    /// force-updated, and branches or tags deleted on the remote deleted here too.
    ///
    /// Safe to call concurrently for the same URL (callers queue on a lock file). Fails with
    /// [`SourceError::Timeout`] when the fetch (or the wait for the lock) exceeds the timeout.
    pub fn fetch(&self, url: &str, credentials: &Credentials) -> Result<(), SourceError> {
        let u = RepoUrl::parse(url)?;
        if u.kind == UrlKind::Http && credentials.basic.is_some() {
            return Err(SourceError::Auth {
                url: u.display.clone(),
                hint: credentials.hint(UrlKind::Http),
            });
        }
        for dir in ["mirrors", "locks", "tmp"] {
            let d = self.root.join(dir);
            std::fs::create_dir_all(&d).map_err(|e| SourceError::io(&d, e))?;
        }
        let mut credentials = credentials.clone();
        if credentials.basic.is_none()
            && let Some((user, pass)) = &u.embedded_basic
        {
            credentials.basic = Some(crate::credentials::BasicAuth {
                username: user.clone(),
                password: crate::credentials::Secret::new(pass.clone()),
            });
            credentials.origin = Some("the user and password in the repository URL".into());
        }
        let secrets = credentials.secrets();

        let interrupt = Arc::new(AtomicBool::new(false));
        let locked = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let job = FetchJob {
            url: u.clone(),
            credentials,
            lock_path: self.root.join("locks").join(format!("{}.lock", u.cache_key())),
            mirror: self.mirror_dir(&u),
            tmp_root: self.root.join("tmp"),
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            interrupt: interrupt.clone(),
            locked: locked.clone(),
            ssh_log: self.root.join("tmp").join(format!(
                "ssh-{}-{}-{}.log",
                u.cache_key(),
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            )),
        };
        std::thread::Builder::new()
            .name("driftless-git-fetch".into())
            .spawn(move || {
                let r = job.run();
                let _ = tx.send(r);
            })
            .map_err(|e| SourceError::io(&self.root, e))?;
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r.map_err(|e| scrub_error(e, &secrets)),
            Err(_) => {
                interrupt.store(true, Ordering::SeqCst);
                Err(SourceError::Timeout {
                    url: u.display.clone(),
                    after: self.timeout,
                    waiting_for_lock: !locked.load(Ordering::SeqCst),
                })
            }
        }
    }
}

/// reqwest is built without a bundled crypto provider (see Cargo.toml); install `ring`, which
/// the workspace already uses, unless the process installed one already.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// Open a repository ignoring system, global and environment git configuration, so that an
/// operator's `~/.gitconfig` (credential helpers, `url.insteadOf`, hooks) never changes what
/// driftless fetches or where credentials go.
pub(crate) fn open_isolated(
    dir: &Path,
    overrides: &[String],
) -> Result<gix::Repository, Box<dyn std::error::Error + Send + Sync>> {
    let opts = gix::open::Options::isolated().config_overrides(overrides.iter().cloned());
    Ok(gix::open_opts(dir, opts)?)
}

struct FetchJob {
    url: RepoUrl,
    credentials: Credentials,
    lock_path: PathBuf,
    mirror: PathBuf,
    tmp_root: PathBuf,
    deadline: Instant,
    timeout: Duration,
    interrupt: Arc<AtomicBool>,
    /// Set once the URL's lock is held, so a timeout can say whether it was spent queueing.
    locked: Arc<AtomicBool>,
    /// ssh writes its diagnostics here (`ssh -E`): gix does not reliably surface ssh's
    /// stderr, and "Permission denied" or "Host key verification failed" decide the error class.
    ssh_log: PathBuf,
}

impl FetchJob {
    fn run(self) -> Result<(), SourceError> {
        let r = self.run_locked();
        let _ = std::fs::remove_file(&self.ssh_log);
        r
    }

    fn run_locked(&self) -> Result<(), SourceError> {
        let _lock = self.lock()?;
        if self.interrupt.load(Ordering::SeqCst) {
            return Err(self.timeout_error(false));
        }
        if self.mirror.join("HEAD").exists() {
            return self.fetch_into(&self.mirror);
        }
        // First clone: build it aside and rename it into place, so a reader never sees a
        // half-initialised mirror and a failed clone leaves nothing behind.
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp_root
            .join(format!("{}-{}-{n}.git", self.url.cache_key(), std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        gix::init_bare(&tmp).map_err(|e| SourceError::Git {
            url: self.url.display.clone(),
            message: error_chain(&e, &[]),
        })?;
        let result = self
            .fetch_into(&tmp)
            .and_then(|()| std::fs::rename(&tmp, &self.mirror).map_err(|e| SourceError::io(&self.mirror, e)));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn timeout_error(&self, waiting_for_lock: bool) -> SourceError {
        SourceError::Timeout {
            url: self.url.display.clone(),
            after: self.timeout,
            waiting_for_lock,
        }
    }

    fn lock(&self) -> Result<File, SourceError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| SourceError::io(&self.lock_path, e))?;
        loop {
            match f.try_lock() {
                Ok(()) => {
                    self.locked.store(true, Ordering::SeqCst);
                    return Ok(f);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= self.deadline || self.interrupt.load(Ordering::SeqCst) {
                        return Err(self.timeout_error(true));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(SourceError::io(&self.lock_path, e));
                }
            }
        }
    }

    fn overrides(&self) -> Vec<String> {
        let remaining = self
            .deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .clamp(5, 60);
        let mut ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout={remaining} -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR -E {}",
            shell_quote(&self.ssh_log.to_string_lossy())
        );
        if let Some(s) = &self.credentials.ssh {
            ssh.push_str(&format!(
                " -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={}",
                shell_quote(&s.private_key.to_string_lossy()),
                shell_quote(&s.known_hosts.to_string_lossy())
            ));
        }
        vec![
            format!("core.sshCommand={ssh}"),
            "ssh.variant=ssh".to_string(),
            "protocol.version=2".to_string(),
            // Never prompt on a terminal: the daemon has none, and a prompt would hang.
            "core.askPass=".to_string(),
            "credential.helper=".to_string(),
            "gitoxide.userAgent=driftless".to_string(),
        ]
    }

    fn fetch_into(&self, dir: &Path) -> Result<(), SourceError> {
        let display = &self.url.display;
        let secrets = self.credentials.secrets();
        let git_err = |e: &dyn std::error::Error| SourceError::Git {
            url: display.clone(),
            message: error_chain(e, &secrets),
        };
        let repo = open_isolated(dir, &self.overrides()).map_err(|e| git_err(&*e))?;
        let remote = repo
            .remote_at_without_url_rewrite(self.url.fetch_url.as_str())
            .map_err(|e| SourceError::InvalidUrl {
                url: display.clone(),
                reason: error_chain(&e, &secrets),
            })?
            .with_refspecs(
                ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                gix::remote::Direction::Fetch,
            )
            .map_err(|e| git_err(&e))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);

        // Credential callback: hand out the configured identity, and remember whether the
        // server asked for one and whether it rejected what we gave.
        let asked = AtomicBool::new(false);
        let rejected = AtomicBool::new(false);
        let basic = self.credentials.basic.clone();
        let classify = |e: &dyn std::error::Error| {
            let ssh_said = std::fs::read(&self.ssh_log)
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).trim().to_string())
                .unwrap_or_default();
            classify_transport_error(
                e,
                &ssh_said,
                &self.url,
                &self.credentials,
                asked.load(Ordering::SeqCst),
                rejected.load(Ordering::SeqCst),
            )
        };

        let connection = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| classify(&e))?;
        let mut transport_options = repo
            .transport_options(self.url.fetch_url.as_str(), None)
            .map_err(|e| git_err(&e))?;
        if let Some(opts) = transport_options.as_mut() {
            configure_http(opts.as_mut(), &self.credentials)?;
        }
        let mut connection = connection.with_credentials(|action| {
            use gix::credentials::helper::Action;
            match action {
                Action::Get(ctx) => {
                    asked.store(true, Ordering::SeqCst);
                    match &basic {
                        Some(b) => Ok(Some(gix::credentials::protocol::Outcome {
                            identity: gix::sec::identity::Account {
                                username: b.username.clone(),
                                password: b.password.expose().to_string(),
                                oauth_refresh_token: None,
                            },
                            next: ctx.into(),
                        })),
                        None => Ok(None),
                    }
                }
                Action::Store(_) => Ok(None),
                Action::Erase(_) => {
                    rejected.store(true, Ordering::SeqCst);
                    Ok(None)
                }
            }
        });
        if let Some(opts) = transport_options {
            connection = connection.with_transport_options(opts);
        }
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| classify(&e))?;
        let outcome = prepare.receive(gix::progress::Discard, &self.interrupt).map_err(|e| {
            if self.interrupt.load(Ordering::SeqCst) {
                self.timeout_error(false)
            } else {
                classify(&e)
            }
        })?;

        // Mirror semantics: drop branches and tags the remote no longer has, so a deleted
        // branch stops resolving instead of silently pinning its last commit.
        let advertised: std::collections::HashSet<Vec<u8>> = outcome
            .ref_map
            .remote_refs
            .iter()
            .map(|r| r.unpack().0.to_vec())
            .collect();
        prune_refs(&repo, &advertised).map_err(|e| git_err(&*e))?;
        Ok(())
    }
}

fn prune_refs(
    repo: &gix::Repository,
    advertised: &std::collections::HashSet<Vec<u8>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut stale = Vec::new();
    let platform = repo.references()?;
    for prefix in ["refs/heads/", "refs/tags/"] {
        for r in platform.prefixed(prefix)? {
            let r = r?;
            let name = r.name().as_bstr().to_vec();
            if !advertised.contains(&name) {
                stale.push(r.detach());
            }
        }
    }
    for r in stale {
        let name = r.name.as_bstr().to_str_lossy().into_owned();
        tracing::debug!(reference = %name, "pruning ref deleted on the remote");
        repo.find_reference(r.name.as_ref())?.delete()?;
    }
    Ok(())
}

/// Apply https settings to gix's transport options: an extra CA file, via reqwest.
fn configure_http(opts: &mut dyn std::any::Any, credentials: &Credentials) -> Result<(), SourceError> {
    use gix::protocol::transport::client::blocking_io::http;
    let Some(http_opts) = opts.downcast_mut::<http::Options>() else {
        return Ok(());
    };
    // Give up on a stalled transfer: under 1 KiB/s for 60 s.
    http_opts.low_speed_limit_bytes_per_second = 1024;
    http_opts.low_speed_time_seconds = 60;
    http_opts.connect_timeout = Some(Duration::from_secs(20));
    if let Some(ca) = &credentials.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| SourceError::Credentials(format!("cannot read CA file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            SourceError::Credentials(format!("CA file {} holds no valid PEM certificate: {e}", ca.display()))
        })?;
        let backend = http::reqwest::Options {
            configure_client: Some(Box::new(move |mut builder: reqwest::blocking::ClientBuilder| {
                for c in &certs {
                    builder = builder.add_root_certificate(c.clone());
                }
                Ok(builder)
            })),
            configure_request: None,
        };
        http_opts.backend = Some(Arc::new(std::sync::Mutex::new(backend)));
    }
    Ok(())
}

/// Decide what a transport failure means for the engine, from what we know (did the server ask
/// for credentials, did it reject them) and from the messages of git, ssh and the HTTP client.
fn classify_transport_error(
    err: &dyn std::error::Error,
    extra: &str,
    url: &RepoUrl,
    credentials: &Credentials,
    asked: bool,
    rejected: bool,
) -> SourceError {
    let secrets = credentials.secrets();
    let mut message = error_chain(err, &secrets);
    if !extra.is_empty() {
        message = format!("{message}: {}", scrub(&extra.replace(['\r', '\n'], " "), &secrets));
    }
    let lower = message.to_ascii_lowercase();
    let has_status = |code: &str| lower.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == code);
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        return SourceError::Auth {
            url: url.display.clone(),
            hint: format!(
                "the server's TLS certificate is not trusted ({}); for a private CA set {} or the repository's CA file",
                message.rsplit(": ").next().unwrap_or("invalid certificate"),
                crate::ENV_CA_FILE
            ),
        };
    }
    let auth = rejected
        || lower.contains("authentication")
        || lower.contains("permission denied")
        || lower.contains("host key verification failed")
        || lower.contains("no matching host key")
        || lower.contains("clear text over http")
        || has_status("401")
        || has_status("403")
        || (asked && credentials.basic.is_none());
    if auth {
        let mut hint = credentials.hint(url.kind);
        if lower.contains("host key verification failed") {
            hint = "the server's host key is not in the configured known_hosts file (or has changed)".to_string();
        }
        return SourceError::Auth {
            url: url.display.clone(),
            hint,
        };
    }
    let not_found = lower.contains("not found")
        || lower.contains("does not exist")
        || lower.contains("no such file")
        || lower.contains("not a git repository")
        || lower.contains("could not verify that")
        || lower.contains("does not appear to be a git repository")
        || has_status("404")
        || lower.contains("access denied");
    if not_found {
        return SourceError::RepositoryNotFound {
            url: url.display.clone(),
            message,
        };
    }
    SourceError::Network {
        url: url.display.clone(),
        message,
    }
}

/// The messages of an error and its sources, joined, with known secrets replaced by `***`.
pub(crate) fn error_chain(err: &dyn std::error::Error, secrets: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    scrub(&parts.join(": "), secrets)
}

/// Replace secrets and URL userinfo in a message.
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut m = message.to_string();
    for s in secrets {
        if !s.is_empty() {
            m = m.replace(s.as_str(), "***");
        }
    }
    // Any URL with userinfo that slipped into a message from below.
    m.split(' ')
        .map(|w| {
            if w.contains("://") && w.contains('@') {
                crate::redact_url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn scrub_error(e: SourceError, secrets: &[String]) -> SourceError {
    match e {
        SourceError::Network { url, message } => SourceError::Network {
            url,
            message: scrub(&message, secrets),
        },
        SourceError::RepositoryNotFound { url, message } => SourceError::RepositoryNotFound {
            url,
            message: scrub(&message, secrets),
        },
        SourceError::Git { url, message } => SourceError::Git {
            url,
            message: scrub(&message, secrets),
        },
        other => other,
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

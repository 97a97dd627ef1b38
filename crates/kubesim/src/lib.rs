//! kubesim: an in-memory Kubernetes API server for driftless's tests, benchmarks and demo.
//!
//! It is test infrastructure and never a production path. It serves the Kubernetes REST API
//! (discovery, OpenAPI v3, CRUD, watch, patches including server-side apply, status
//! subresources, garbage collection) from memory, closely enough that the real `kubectl` and
//! kube-rs work against it unchanged. Simulated controllers give workloads a status so that
//! health can be tested; see `crates/kubesim/README.md` for what is and is not implemented.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubesim::KubeSimError> {
//! let sim = kubesim::KubeSim::start(kubesim::Config::default()).await?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! println!("serving at {}", sim.url());
//! # Ok(()) }
//! ```

pub mod api;
pub mod controllers;
pub mod debug;
pub mod discovery;
pub mod error;
pub mod machinery;
pub mod openapi;
pub mod selector;
pub mod state;
pub mod table;
pub mod time;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use debug::{FaultConfig, StatsSnapshot};

/// Why kubesim could not start or write its kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeSimError {
    /// Binding the listen address failed.
    #[error("kubesim: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation or TLS setup failed.
    #[error("kubesim: TLS setup failed: {0}")]
    Tls(String),
    /// Writing a file failed.
    #[error("kubesim: cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The background runtime could not be started.
    #[error("kubesim: cannot start runtime: {0}")]
    Runtime(std::io::Error),
}

/// How to run kubesim.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Serve HTTPS with a freshly generated CA (written into the kubeconfig).
    pub tls: bool,
    /// Require this bearer token on every API request (written into the kubeconfig).
    pub token: Option<String>,
    /// How long simulated workloads take to become ready.
    pub ready_delay: Duration,
    /// Interval between watch BOOKMARK events.
    pub bookmark_interval: Duration,
    /// Number of changes kept for watch replay; older resourceVersions get 410 Gone.
    pub history_cap: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            token: None,
            ready_delay: Duration::from_millis(300),
            bookmark_interval: Duration::from_secs(5),
            history_cap: 200_000,
        }
    }
}

/// A running kubesim. Dropping it stops the server.
pub struct KubeSim {
    addr: SocketAddr,
    url: String,
    shared: Arc<api::Shared>,
    ca_pem: Option<String>,
    token: Option<String>,
    stop: watch::Sender<bool>,
    /// Present when started with [`KubeSim::spawn`]: the runtime thread serving it.
    runtime: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
}

fn make_tls() -> Result<Tls, KubeSimError> {
    let err = |e: &dyn std::fmt::Display| KubeSimError::Tls(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubesim-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "kubernetes.default.svc".to_owned(),
    ])
    .map_err(|e| err(&e))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "kubesim");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key_der)
        .map_err(|e| err(&e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        ca_pem: ca_cert.pem(),
    })
}

fn add_namespace(st: &mut state::State, name: &str) {
    let now = time::now_rfc3339();
    let uid = st.new_uid();
    let ns = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": uid, "creationTimestamp": now, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    });
    st.put(
        &(String::new(), "namespaces".into()),
        (String::new(), name.to_owned()),
        ns,
    );
}

impl KubeSim {
    /// Starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> Result<KubeSim, KubeSimError> {
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| KubeSimError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| KubeSimError::Bind {
            addr: config.addr,
            source,
        })?;
        let tls = if config.tls { Some(make_tls()?) } else { None };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");

        let mut st = state::State::new(config.history_cap);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            add_namespace(&mut st, ns);
        }
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (drop_tx, _) = watch::channel(0u64);
        let shared = Arc::new(api::Shared {
            state: Mutex::new(st),
            stats: Default::default(),
            faults: Default::default(),
            opts: api::Options {
                token: config.token.clone(),
                bookmark_interval: config.bookmark_interval,
            },
            controller: ctl_tx,
            server_address: addr.to_string(),
            drop_watches: drop_tx,
        });
        tokio::spawn(controllers::run(Arc::downgrade(&shared), ctl_rx, config.ready_delay));

        let router = axum::Router::new().fallback(api::handle).with_state(shared.clone());
        let (stop, mut stopped) = watch::channel(false);
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let service = TowerToHyperService::new(router.clone());
                        let acceptor = acceptor.clone();
                        conns.spawn(async move {
                            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            match acceptor {
                                Some(a) => {
                                    if let Ok(tls) = a.accept(stream).await {
                                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                                    }
                                }
                                None => {
                                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                                }
                            }
                        });
                    }
                }
            }
            // Dropping the JoinSet aborts open connections, watches included.
        });
        Ok(KubeSim {
            addr,
            url,
            shared,
            ca_pem: tls.map(|t| t.ca_pem),
            token: config.token,
            stop,
            runtime: Mutex::new(None),
        })
    }

    /// Starts kubesim on a runtime of its own, in a background thread: for synchronous tests.
    pub fn spawn(config: Config) -> Result<KubeSim, KubeSimError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("kubesim".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(KubeSimError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match KubeSim::start(config).await {
                        Ok(sim) => {
                            let mut stopped = sim.stop.subscribe();
                            let _ = tx.send(Ok(sim));
                            let _ = stopped.wait_for(|s| *s).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(KubeSimError::Runtime)?;
        let sim = rx
            .recv()
            .map_err(|_| KubeSimError::Runtime(std::io::Error::other("kubesim thread exited")))??;
        *sim.runtime.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(sim)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig (YAML) whose current context `kubesim` points at this server.
    pub fn kubeconfig(&self) -> String {
        let mut cluster = json!({"server": self.url});
        if let Some(ca) = &self.ca_pem {
            cluster["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
        }
        let mut user = json!({});
        if let Some(t) = &self.token {
            user["token"] = json!(t);
        }
        let cfg = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": cluster}],
            "users": [{"name": "kubesim", "user": user}],
            "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim", "namespace": "default"}}],
            "current-context": "kubesim",
            "preferences": {}
        });
        // JSON is valid YAML, and every kubeconfig loader accepts it.
        serde_json::to_string_pretty(&cfg).unwrap_or_default()
    }

    /// Writes [`KubeSim::kubeconfig`] to `path` (mode 0600: it may hold a token).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), KubeSimError> {
        let werr = |source| KubeSimError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(path, self.kubeconfig()).map_err(werr)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(werr)?;
        }
        Ok(())
    }

    /// Request counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        self.shared.stats.reset()
    }

    /// Sets injected faults (latency, 500s, 429s).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(faults)
    }

    /// Closes every open watch connection, as a restarting apiserver would.
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// Number of stored objects (all kinds).
    pub fn object_count(&self) -> usize {
        self.shared.lock().objects.values().map(|m| m.len()).sum()
    }

    /// Reads one stored object directly (no request is counted), for test assertions.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .get(
                &(group.to_owned(), plural.to_owned()),
                &(namespace.to_owned(), name.to_owned()),
            )
            .map(|o| (*o).clone())
    }

    /// Stops serving; open connections are closed.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // The runtime thread ends once it sees the stop signal.
            let _ = h.join();
        }
    }
}

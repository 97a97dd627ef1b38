//! Smart HTTP: a minimal HTTP/1.1 server on 127.0.0.1 that runs the real `git http-backend`
//! as CGI for every request, optionally behind basic auth and TLS (a fresh test CA).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;

/// How [`GitHttpServer::start_with`] serves: plain HTTP without auth by default.
#[derive(Clone, Debug, Default)]
pub struct GitHttpOptions {
    /// Require `Authorization: Basic` with this user and password; anything else gets a 401.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate for `localhost`/`127.0.0.1` signed by a fresh CA, whose
    /// certificate is written to `<tls_dir>/ca.pem` (see [`GitHttpServer::ca_pem`]).
    pub tls_dir: Option<PathBuf>,
}

/// A running smart-HTTP git server; stops accepting when dropped.
pub struct GitHttpServer {
    port: u16,
    ca_pem: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl GitHttpServer {
    /// Serves every bare repository under `project_root` (`GIT_PROJECT_ROOT`) over plain HTTP.
    pub fn start(project_root: &Path) -> GitHttpServer {
        GitHttpServer::start_with(project_root, GitHttpOptions::default())
    }

    /// Serves every bare repository under `project_root`, with basic auth and TLS as `opts` say.
    pub fn start_with(project_root: &Path, opts: GitHttpOptions) -> GitHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (tls, ca_pem) = match &opts.tls_dir {
            Some(dir) => {
                let (cfg, ca) = tls_config(dir);
                (Some(Arc::new(cfg)), Some(ca))
            }
            None => (None, None),
        };
        let auth = opts.basic_auth.map(|(user, password)| {
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            Arc::new(Auth { header, user })
        });
        let root = project_root.to_path_buf();
        let (stop2, requests2) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let root = root.clone();
                let requests = requests2.clone();
                let auth = auth.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    let auth = auth.as_deref();
                    match tls {
                        Some(cfg) => {
                            let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(sc, conn);
                            serve_connection(stream, &root, auth, &requests);
                        }
                        None => serve_connection(conn, &root, auth, &requests),
                    }
                });
            }
        });
        GitHttpServer {
            port,
            ca_pem,
            stop,
            requests,
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/<repo>` (`https://` with TLS), e.g. `url("repo.git")`.
    pub fn url(&self, repo: &str) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{repo}", self.port)
    }

    /// With TLS, the PEM file of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// HTTP requests received so far (including ones refused for missing credentials).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The `Authorization` header value required, and the user it names.
struct Auth {
    header: String,
    user: String,
}

/// A server config for `localhost` and `127.0.0.1` signed by a fresh CA; writes the CA
/// certificate to `dir/ca.pem` and returns its path.
fn tls_config(dir: &Path) -> (rustls::ServerConfig, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "driftless test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages.push(KeyUsagePurpose::DigitalSignature);
    leaf.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key_der)
        .unwrap();
    (cfg, ca_path)
}

fn serve_connection<S: Read + Write>(stream: S, root: &Path, auth: Option<&Auth>, requests: &AtomicUsize) {
    let mut reader = BufReader::new(stream);
    // Keep-alive: serve requests until the client closes.
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        // Request body: Content-Length or chunked.
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size_line = String::new();
                if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
                    return;
                }
                let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                if size == 0 {
                    let mut crlf = String::new();
                    let _ = reader.read_line(&mut crlf);
                    break;
                }
                let mut chunk = vec![0; size];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                body.extend_from_slice(&chunk);
                let mut crlf = [0u8; 2];
                let _ = reader.read_exact(&mut crlf);
            }
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        requests.fetch_add(1, Ordering::SeqCst);

        let stream = reader.get_mut();
        if let Some(auth) = auth
            && header("authorization").as_deref() != Some(auth.header.as_str())
        {
            let msg = b"authentication required\n";
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                msg.len()
            );
            let _ = stream.write_all(msg);
            let _ = stream.flush();
            continue;
        }

        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let mut cmd = Command::new("git");
        cmd.arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("CONTENT_LENGTH", body.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(ct) = header("content-type") {
            cmd.env("CONTENT_TYPE", ct);
        }
        if let Some(p) = header("git-protocol") {
            cmd.env("GIT_PROTOCOL", p);
        }
        if let Some(enc) = header("content-encoding") {
            cmd.env("HTTP_CONTENT_ENCODING", enc);
        }
        if let Some(auth) = auth {
            cmd.env("REMOTE_USER", &auth.user);
        }
        let Ok(mut child) = cmd.spawn() else { return };
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut out = Vec::new();
        let _ = child.stdout.take().unwrap().read_to_end(&mut out);
        let _ = writer.join();
        let _ = child.wait();

        // CGI response: headers, a blank line, the body.
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let Some((end, sep)) = split else { return };
        let head = String::from_utf8_lossy(&out[..end]).to_string();
        let resp_body = &out[end + sep..];
        let mut status = "200 OK".to_owned();
        let mut resp_headers = String::new();
        for line in head.lines() {
            if let Some(s) = line.strip_prefix("Status:") {
                status = s.trim().to_owned();
            } else if !line.trim().is_empty() {
                resp_headers.push_str(line.trim_end());
                resp_headers.push_str("\r\n");
            }
        }
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\n{resp_headers}Content-Length: {}\r\n\r\n",
            resp_body.len()
        );
        let _ = stream.write_all(resp_body);
        let _ = stream.flush();
    }
}

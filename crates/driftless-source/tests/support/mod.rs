//! Test fixtures: repositories made with the real `git` CLI, and real servers on 127.0.0.1
//! (`git daemon`, `git http-backend` behind a small CGI bridge with basic auth and TLS, `sshd`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;

/// Run git with an isolated configuration, failing the test on error. Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Author")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(dir: &Path, rel: &str, content: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn symlink(dir: &Path, rel: &str, target: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

/// A fixture repository and the commits its refs point at.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    /// Bare repository that servers export.
    pub bare: PathBuf,
    /// Working clone used to build it.
    pub work: PathBuf,
    pub c1: String,
    pub c2: String,
    pub c3: String,
    pub c4: String,
    pub develop: String,
    pub shared_branch: String,
    pub shared_tag: String,
}

/// main: c1 (v1.0.0 lightweight) → c2 (v1.2.0 annotated) → c3 (v1.3.0-rc.1 annotated)
/// → c4 (v2.0.0 annotated). `develop` branches from c2. `shared` is both a branch (at c3) and a
/// tag (at c1).
pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    write(&work, "app/deploy.yaml", b"kind: Deployment\nversion: 1\n");
    write(&work, "app/sub/config.yaml", b"kind: ConfigMap\n");
    write(&work, "README.md", b"# fixture\n");
    write(&work, "scripts/run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        work.join("scripts/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first commit\n\nbody"]);
    let c1 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "v1.0.0"]);
    git(&work, &["tag", "shared"]);

    write(&work, "app/deploy.yaml", b"kind: Deployment\nversion: 2\n");
    git(&work, &["commit", "-q", "-am", "second"]);
    let c2 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1.2.0", "-m", "release 1.2.0"]);

    git(&work, &["checkout", "-q", "-b", "develop"]);
    write(&work, "app/deploy.yaml", b"kind: Deployment\nversion: dev\n");
    git(&work, &["commit", "-q", "-am", "develop work"]);
    let develop = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);

    write(&work, "app/deploy.yaml", b"kind: Deployment\nversion: 3\n");
    git(&work, &["commit", "-q", "-am", "third"]);
    let c3 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1.3.0-rc.1", "-m", "rc"]);
    git(&work, &["branch", "shared"]);

    // Hostile and tricky content, each in its own directory.
    symlink(&work, "links/to-file", "../app/deploy.yaml");
    symlink(&work, "links/to-dir", "../app/sub");
    symlink(&work, "links/chain", "to-file");
    symlink(&work, "escape/passwd", "../../../../etc/passwd");
    symlink(&work, "absolute/passwd", "/etc/passwd");
    symlink(&work, "loop/self", "..");
    symlink(&work, "dangling/link", "nowhere.yaml");
    write(&work, "many/a.yaml", &[b'a'; 3000]);
    write(&work, "many/b.yaml", &[b'b'; 3000]);
    write(&work, "big/huge.bin", &vec![b'x'; 17 * 1024 * 1024]);
    write(&work, "app/deploy.yaml", b"kind: Deployment\nversion: 4\n");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fourth"]);
    let c4 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v2.0.0", "-m", "release 2"]);

    let bare = tmp.path().join("srv").join("repo.git");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(
        tmp.path(),
        &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()],
    );
    // The clone's refs: all branches (clone --bare copies refs/heads/* and tags).
    git(&bare, &["branch", "-f", "develop", &develop]);
    git(&bare, &["branch", "-f", "shared", &c3]);
    let shared_branch = c3.clone();
    let shared_tag = c1.clone();
    Fixture {
        tmp,
        bare,
        work,
        c1,
        c2,
        c3,
        c4,
        develop,
        shared_branch,
        shared_tag,
    }
}

/// A free port on 127.0.0.1 (bound and released; a tiny race we accept in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait until something listens on 127.0.0.1:port.
pub fn wait_for_port(port: u16, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on port {port} did not come up");
}

/// A child process killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git daemon --export-all --base-path=<base>` on 127.0.0.1.
pub fn git_daemon(base: &Path) -> Server {
    let port = free_port();
    // Run git-daemon itself: `git daemon` would leave it running as an orphan when killed.
    let exec_path = git(base, &["--exec-path"]);
    let mut child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args([
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            &base.display().to_string(),
        ])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    wait_for_port(port, &mut child);
    Server { child, port }
}

/// Smart HTTP: a minimal HTTP/1.1 server on 127.0.0.1 that runs `git http-backend` as CGI,
/// optionally behind basic auth and TLS. Stops when dropped.
pub struct HttpServer {
    pub port: u16,
    pub ca_pem: Option<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub struct HttpOptions {
    pub basic_auth: Option<(String, String)>,
    pub tls_dir: Option<PathBuf>,
}

pub fn http_backend(project_root: &Path, opts: HttpOptions) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let (tls, ca_pem) = match &opts.tls_dir {
        Some(dir) => {
            let (cfg, ca) = tls_config(dir);
            (Some(Arc::new(cfg)), Some(ca))
        }
        None => (None, None),
    };
    let expected = opts.basic_auth.as_ref().map(|(u, p)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    });
    let root = project_root.to_path_buf();
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let root = root.clone();
            let expected = expected.clone();
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                match tls {
                    Some(cfg) => {
                        let Ok(sc) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        let stream = rustls::StreamOwned::new(sc, conn);
                        serve_connection(stream, &root, expected.as_deref());
                    }
                    None => serve_connection(conn, &root, expected.as_deref()),
                }
            });
        }
    });
    HttpServer { port, ca_pem, stop }
}

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

fn serve_connection<S: Read + Write>(stream: S, root: &Path, expected_auth: Option<&str>) {
    let mut reader = BufReader::new(stream);
    // Keep-alive: serve requests until the client closes.
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
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
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
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

        let stream = reader.get_mut();
        if let Some(expected) = expected_auth
            && header("authorization").as_deref() != Some(expected)
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
        if expected_auth.is_some() {
            cmd.env("REMOTE_USER", "user");
        }
        let mut child = cmd.spawn().expect("git http-backend runs");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let _ = writer.join();
        let _ = child.wait();

        // CGI response: headers, blank line, body.
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let Some((end, sep)) = split else { return };
        let head = String::from_utf8_lossy(&out[..end]).to_string();
        let resp_body = &out[end + sep..];
        let mut status = "200 OK".to_string();
        let mut resp_headers = String::new();
        for line in head.lines() {
            if let Some(s) = line.strip_prefix("Status:") {
                status = s.trim().to_string();
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

/// An `sshd` on 127.0.0.1 accepting one user key, with a known_hosts file for its host key.
pub struct Sshd {
    pub server: Server,
    pub user: String,
    pub user_key: PathBuf,
    pub known_hosts: PathBuf,
    pub other_key: PathBuf,
    pub dir: tempfile::TempDir,
}

pub const SSHD: &str = "/usr/sbin/sshd";

/// Start sshd, or `None` (with a printed reason) when the binary is not installed.
pub fn sshd() -> Option<Sshd> {
    if !Path::new(SSHD).exists() {
        eprintln!(
            "SKIPPED: {SSHD} not found; install the Debian package openssh-server (listed in crates/driftless-source/tests/APT_PACKAGES)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keygen = |path: &Path| {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "driftless-test", "-f"])
            .arg(path)
            .status()
            .expect("ssh-keygen runs");
        assert!(st.success());
    };
    let host_key = d.join("host_ed25519");
    let user_key = d.join("user_ed25519");
    let other_key = d.join("other_ed25519");
    keygen(&host_key);
    keygen(&user_key);
    keygen(&other_key);
    std::fs::copy(d.join("user_ed25519.pub"), d.join("authorized_keys")).unwrap();
    let port = free_port();
    let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
    let mut fields = host_pub.split_whitespace();
    let (kt, kd) = (fields.next().unwrap(), fields.next().unwrap());
    let known_hosts = d.join("known_hosts");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {kt} {kd}\n")).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host_key.display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display(),
        ),
    )
    .unwrap();
    // sshd insists on its privilege separation directory when started as root.
    if user == "root" {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let mut child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    wait_for_port(port, &mut child);
    Some(Sshd {
        server: Server { child, port },
        user,
        user_key,
        known_hosts,
        other_key,
        dir,
    })
}

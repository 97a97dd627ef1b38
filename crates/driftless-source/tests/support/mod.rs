//! Test fixtures: repositories made with the real `git` CLI, and real servers on 127.0.0.1
//! (`git daemon`, `sshd`; smart HTTP with basic auth and TLS is testkit's [`GitHttpServer`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use testkit::{GitHttpOptions, GitHttpServer, free_port, wait_for_port};

/// Run git with an isolated configuration and a fixed commit date, failing the test on error.
/// Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    testkit::git_with_env(
        dir,
        args,
        &[
            ("GIT_AUTHOR_DATE", "1700000000 +0000"),
            ("GIT_COMMITTER_DATE", "1700000000 +0000"),
        ],
    )
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

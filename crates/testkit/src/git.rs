//! Git repositories made with the real `git` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::GitHttpServer;

/// Runs git in `dir` with an isolated configuration (no system or global config, fixed
/// identity), panicking with git's stderr on failure. Returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_env(dir, args, &[])
}

/// Like [`git`], with extra environment variables, e.g. `GIT_AUTHOR_DATE` and
/// `GIT_COMMITTER_DATE` for reproducible commits.
pub fn git_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Author")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .envs(env.iter().copied())
        .output()
        .expect("git runs (is git installed?)");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A work repository (branch `main`) and a bare repository `srv/repo.git` it pushes to, in a
/// temporary directory removed on drop.
pub struct GitRepo {
    tmp: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
}

impl GitRepo {
    /// An empty repository with branch `main`; nothing is committed yet.
    pub fn new() -> GitRepo {
        let tmp = tempfile::Builder::new()
            .prefix("testkit-git")
            .tempdir()
            .expect("tempdir");
        let work = tmp.path().join("work");
        let bare = tmp.path().join("srv").join("repo.git");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&bare).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        // Smart HTTP fetches need nothing more; `http.receivepack` is not needed (we push over
        // the file system).
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        GitRepo { tmp, work, bare }
    }

    /// The working tree.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// The bare repository the servers export.
    pub fn bare_dir(&self) -> &Path {
        &self.bare
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Writes `content` to `rel` in the working tree (creating directories).
    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    /// Removes `rel` from the working tree.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.work.join(rel)).unwrap();
        self
    }

    /// Commits everything (`add -A`), pushes `main` to the bare repository, and returns the
    /// commit id.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        let id = git(&self.work, &["rev-parse", "HEAD"]);
        assert_eq!(
            git(&self.bare, &["rev-parse", "refs/heads/main"]),
            id,
            "push reached the bare repository"
        );
        id
    }

    /// Serves this repository over smart HTTP; its URL is [`GitHttpServer::url`]`("repo.git")`.
    pub fn serve_http(&self) -> GitHttpServer {
        GitHttpServer::start(self.bare.parent().unwrap())
    }

    /// The temporary directory holding both repositories.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}

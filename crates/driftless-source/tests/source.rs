//! Integration tests against real git servers on 127.0.0.1.

mod support;

use std::time::Duration;

use driftless_source::{Credentials, ErrorClass, GitCache, Limits, SourceError};
use support::*;

fn cache() -> (tempfile::TempDir, GitCache) {
    let d = tempfile::tempdir().unwrap();
    let c = GitCache::new(d.path().join("cache")).with_timeout(Duration::from_secs(60));
    (d, c)
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

// ---------- local paths and file:// ----------

#[test]
fn local_path_fetch_and_resolve_everything() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();

    let main = cache.resolve(url, "main").unwrap();
    assert_eq!(main.commit, f.c4);
    assert_eq!(main.resolved_ref, "refs/heads/main");
    assert_eq!(main.requested_ref, "main");
    assert_eq!(main.author, "Ada Author <ada@example.com>");
    assert_eq!(main.message, "fourth");
    assert_eq!(main.time, 1_700_000_000);

    assert_eq!(cache.resolve(url, "develop").unwrap().commit, f.develop);
    assert_eq!(cache.resolve(url, "refs/heads/develop").unwrap().commit, f.develop);
    // lightweight tag
    let t = cache.resolve(url, "v1.0.0").unwrap();
    assert_eq!(
        (t.commit.as_str(), t.resolved_ref.as_str()),
        (f.c1.as_str(), "refs/tags/v1.0.0")
    );
    // full SHA, upper case accepted
    let s = cache.resolve(url, &f.c2.to_uppercase()).unwrap();
    assert_eq!(s.commit, f.c2);
    assert_eq!(s.message, "second");
}

#[test]
fn file_url_shares_the_cache_entry_with_the_plain_path() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = format!("file://{}", f.bare.display());
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
    assert_eq!(cache.resolve(&url, "main").unwrap().commit, f.c4);
    assert_eq!(
        cache.mirror_path(&url).unwrap(),
        cache.mirror_path(f.bare.to_str().unwrap()).unwrap()
    );
    // Resolving through the plain path works without another fetch.
    assert_eq!(cache.resolve(f.bare.to_str().unwrap(), "v1.2.0").unwrap().commit, f.c2);
}

#[test]
fn annotated_tags_are_peeled_to_commits() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    let tag_object = git(&f.bare, &["rev-parse", "v1.2.0"]);
    assert_ne!(tag_object, f.c2, "v1.2.0 must be an annotated tag object");
    let r = cache.resolve(url, "v1.2.0").unwrap();
    assert_eq!(r.commit, f.c2);
    assert_eq!(r.resolved_ref, "refs/tags/v1.2.0");
    // The tag object's own id resolves to its commit too.
    assert_eq!(cache.resolve(url, &tag_object).unwrap().commit, f.c2);
}

#[test]
fn semver_ranges_over_tags() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    let r = |range: &str| cache.resolve(url, range).map(|r| (r.commit, r.resolved_ref));
    assert_eq!(r("~1.2").unwrap(), (f.c2.clone(), "refs/tags/v1.2.0".into()));
    assert_eq!(r(">=1.0.0 <2").unwrap().0, f.c2, "prerelease v1.3.0-rc.1 is not picked");
    assert_eq!(r("1.x").unwrap().0, f.c2);
    assert_eq!(r("^1").unwrap().0, f.c2);
    assert_eq!(r(">=1.0.0").unwrap().0, f.c4);
    assert_eq!(r("*").unwrap().0, f.c4);
    assert_eq!(r("1.0.0").unwrap().0, f.c1, "a bare version is exact");
    assert_eq!(r(">=1.3.0-rc.0 <2").unwrap().0, f.c3, "prerelease when asked for");
    let err = r(">=3").unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string().contains("no tag matches the semver range '>=3'"),
        "{err}"
    );
}

#[test]
fn branch_wins_over_tag_of_same_name() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    let b = cache.resolve(url, "shared").unwrap();
    assert_eq!(b.commit, f.shared_branch);
    assert_eq!(b.resolved_ref, "refs/heads/shared");
    let t = cache.resolve(url, "refs/tags/shared").unwrap();
    assert_eq!(t.commit, f.shared_tag);
}

#[test]
fn unknown_ref_error_names_ref_repo_and_nearby_branches() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    let err = cache.resolve(url, "mian").unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }));
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(msg.contains("ref 'mian' not found in"), "{msg}");
    assert!(msg.contains(url), "{msg}");
    assert!(msg.contains("branches: main, "), "closest first: {msg}");
    assert!(msg.contains("develop"), "{msg}");
    assert!(msg.contains("v1.0.0"), "{msg}");

    // A SHA that does not exist.
    let err = cache
        .resolve(url, "0123456789abcdef0123456789abcdef01234567")
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn resolve_before_fetch_says_so() {
    let f = fixture();
    let (_d, cache) = cache();
    let err = cache.resolve(f.bare.to_str().unwrap(), "main").unwrap_err();
    assert!(matches!(err, SourceError::NotFetched { .. }), "{err}");
}

#[test]
fn missing_local_repository_is_not_found() {
    let (d, cache) = cache();
    let err = cache
        .fetch(d.path().join("nope.git").to_str().unwrap(), &Credentials::anonymous())
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    // Nothing half-made is left in the cache.
    let left: Vec<_> = std::fs::read_dir(d.path().join("cache/tmp")).unwrap().collect();
    assert!(left.is_empty());
}

#[test]
fn refetch_picks_up_new_commits_and_prunes_deleted_refs() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    git(&f.bare, &["branch", "-D", "develop"]);
    git(&f.bare, &["tag", "-d", "v1.0.0"]);
    git(&f.bare, &["branch", "-f", "main", &f.c1]);
    cache.fetch(url, &Credentials::anonymous()).unwrap();
    assert_eq!(cache.resolve(url, "main").unwrap().commit, f.c1, "force-updated");
    assert!(cache.resolve(url, "develop").unwrap_err().is_not_found());
    assert!(!cache.tags(url).unwrap().contains(&"v1.0.0".to_string()));
    assert!(cache.branches(url).unwrap().contains(&"shared".to_string()));
}

#[test]
fn concurrent_fetches_of_one_url_are_safe() {
    let f = fixture();
    let (_d, cache) = cache();
    let url = f.bare.to_str().unwrap().to_string();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| cache.fetch(&url, &Credentials::anonymous())))
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    assert_eq!(cache.resolve(&url, "main").unwrap().commit, f.c4);
}

#[test]
fn cache_paths_are_hashes_not_user_paths() {
    let (_d, cache) = cache();
    let p = cache.mirror_path("https://host/../../etc/passwd").unwrap();
    let name = p.file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".git"));
    assert!(name.trim_end_matches(".git").chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(p.parent().unwrap(), cache.root().join("mirrors"));
}

// ---------- reading trees ----------

fn fetched() -> (Fixture, tempfile::TempDir, GitCache, String) {
    let f = fixture();
    let (d, cache) = cache();
    let url = f.bare.to_str().unwrap().to_string();
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
    (f, d, cache, url)
}

#[test]
fn materialize_writes_only_the_path() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    cache.materialize(&url, &f.c2, "app", dest.path()).unwrap();
    assert_eq!(read(&dest.path().join("deploy.yaml")), "kind: Deployment\nversion: 2\n");
    assert_eq!(read(&dest.path().join("sub/config.yaml")), "kind: ConfigMap\n");
    assert!(!dest.path().join("README.md").exists());

    let whole = tempfile::tempdir().unwrap();
    cache.materialize(&url, &f.c1, "", whole.path()).unwrap();
    assert!(whole.path().join("README.md").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(whole.path().join("scripts/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept");

    let files = cache.list_files(&url, &f.c2, "./app/").unwrap();
    assert_eq!(files, vec!["deploy.yaml", "sub/config.yaml"]);
    assert_eq!(
        cache.read_file(&url, &f.c3, "app/deploy.yaml").unwrap(),
        b"kind: Deployment\nversion: 3\n"
    );
}

#[test]
fn materialize_refuses_dotdot_and_absolute_paths() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    for p in ["../srv", "app/../../x", "/etc", "app/.."] {
        let err = cache.materialize(&url, &f.c4, p, dest.path()).unwrap_err();
        assert!(matches!(err, SourceError::UnsafePath { .. }), "{p}: {err}");
        assert_eq!(err.class(), ErrorClass::Refused);
    }
    assert!(cache.read_file(&url, &f.c4, "../etc/passwd").is_err());
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn symlinks_escaping_the_repository_are_refused_by_name() {
    let (f, _d, cache, url) = fetched();
    for (dir, file) in [("escape", "escape/passwd"), ("absolute", "absolute/passwd")] {
        let dest = tempfile::tempdir().unwrap();
        let err = cache.materialize(&url, &f.c4, dir, dest.path()).unwrap_err();
        match &err {
            SourceError::SymlinkEscape { file: named, .. } => assert_eq!(named, file),
            other => panic!("expected SymlinkEscape, got {other}"),
        }
        assert!(err.to_string().contains(file), "{err}");
        assert!(!dest.path().join("passwd").exists());
        let err = cache.read_file(&url, &f.c4, file).unwrap_err();
        assert!(matches!(err, SourceError::SymlinkEscape { .. }), "{err}");
    }
    // The whole tree contains them, so the root is refused as well.
    let dest = tempfile::tempdir().unwrap();
    assert!(cache.materialize(&url, &f.c4, "", dest.path()).is_err());
}

#[test]
fn symlinks_inside_the_repository_are_copied_not_linked() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    cache.materialize(&url, &f.c4, "links", dest.path()).unwrap();
    let to_file = dest.path().join("to-file");
    assert!(!std::fs::symlink_metadata(&to_file).unwrap().file_type().is_symlink());
    assert_eq!(read(&to_file), "kind: Deployment\nversion: 4\n");
    assert_eq!(read(&dest.path().join("chain")), "kind: Deployment\nversion: 4\n");
    assert_eq!(read(&dest.path().join("to-dir/config.yaml")), "kind: ConfigMap\n");
    assert!(
        !std::fs::symlink_metadata(dest.path().join("to-dir"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn symlink_loops_and_dangling_links_fail_clearly() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    let err = cache.materialize(&url, &f.c4, "loop", dest.path()).unwrap_err();
    assert!(matches!(err, SourceError::SymlinkLoop { .. }), "{err}");
    assert!(err.to_string().contains("loop/self"), "{err}");
    let dest = tempfile::tempdir().unwrap();
    let err = cache.materialize(&url, &f.c4, "dangling", dest.path()).unwrap_err();
    assert!(err.to_string().contains("dangling/link"), "{err}");
}

#[test]
fn big_blobs_and_big_totals_are_refused() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    let err = cache.materialize(&url, &f.c4, "big", dest.path()).unwrap_err();
    match &err {
        SourceError::FileTooLarge { file, size, limit } => {
            assert_eq!(file, "big/huge.bin");
            assert_eq!(*size, 17 * 1024 * 1024);
            assert_eq!(*limit, 16 * 1024 * 1024);
        }
        other => panic!("expected FileTooLarge, got {other}"),
    }
    assert!(cache.read_file(&url, &f.c4, "big/huge.bin").is_err());

    let small = cache.clone().with_limits(Limits {
        max_total_bytes: 5000,
        ..Limits::default()
    });
    let dest = tempfile::tempdir().unwrap();
    let err = small.materialize(&url, &f.c4, "many", dest.path()).unwrap_err();
    assert!(matches!(err, SourceError::TotalTooLarge { .. }), "{err}");
    let files = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let err = cache
        .clone()
        .with_limits(files)
        .list_files(&url, &f.c4, "many")
        .unwrap_err();
    assert!(matches!(err, SourceError::TotalTooLarge { .. }), "{err}");
}

#[test]
fn materialize_needs_an_existing_commit_and_path() {
    let (f, _d, cache, url) = fetched();
    let dest = tempfile::tempdir().unwrap();
    let err = cache.materialize(&url, "main", "app", dest.path()).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = cache.materialize(&url, &f.c1, "links", dest.path()).unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err}");
}

// ---------- git daemon ----------

#[test]
fn git_daemon_fetch() {
    let f = fixture();
    let daemon = git_daemon(f.bare.parent().unwrap());
    let (_d, cache) = cache();
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
    assert_eq!(cache.resolve(&url, "main").unwrap().commit, f.c4);
    assert_eq!(cache.resolve(&url, "~1.2").unwrap().commit, f.c2);
    // Second fetch into the existing mirror.
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    cache.materialize(&url, &f.c3, "app", dest.path()).unwrap();
    assert_eq!(read(&dest.path().join("deploy.yaml")), "kind: Deployment\nversion: 3\n");

    let err = cache
        .fetch(
            &format!("git://127.0.0.1:{}/missing.git", daemon.port),
            &Credentials::anonymous(),
        )
        .unwrap_err();
    assert!(!err.is_auth(), "{err}");
}

#[test]
fn unreachable_server_is_retryable() {
    let (_d, cache) = cache();
    let port = free_port(); // nothing listens there
    let err = cache
        .fetch(&format!("git://127.0.0.1:{port}/repo.git"), &Credentials::anonymous())
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and say nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(4) {
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let d = tempfile::tempdir().unwrap();
    let cache = GitCache::new(d.path().to_path_buf()).with_timeout(Duration::from_secs(1));
    let err = cache
        .fetch(&format!("git://127.0.0.1:{port}/repo.git"), &Credentials::anonymous())
        .unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

// ---------- smart HTTP through git http-backend ----------

#[test]
fn http_anonymous_fetch() {
    let f = fixture();
    let server = GitHttpServer::start(f.bare.parent().unwrap());
    let (_d, cache) = cache();
    let url = server.url("repo.git");
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
    assert_eq!(cache.resolve(&url, "v2.0.0").unwrap().commit, f.c4);
    cache.fetch(&url, &Credentials::anonymous()).unwrap();
}

#[test]
fn https_basic_auth_right_and_wrong_credentials() {
    let f = fixture();
    let tls_dir = tempfile::tempdir().unwrap();
    let password = "s3cr3t-Pa55word";
    let server = GitHttpServer::start_with(
        f.bare.parent().unwrap(),
        GitHttpOptions {
            basic_auth: Some(("alice".into(), password.into())),
            tls_dir: Some(tls_dir.path().to_path_buf()),
        },
    );
    let ca = server.ca_pem().unwrap().to_path_buf();
    let (_d, cache) = cache();
    let url = server.url("repo.git");

    // Without the CA the server is not trusted.
    let err = cache.fetch(&url, &Credentials::basic("alice", password)).unwrap_err();
    assert!(!err.to_string().contains(password));
    assert!(err.to_string().contains("DRIFTLESS_GIT_CA_FILE"), "{err}");
    assert!(!err.is_retryable(), "an untrusted certificate needs a fix, not a retry");

    cache
        .fetch(&url, &Credentials::basic("alice", password).with_ca_file(&ca))
        .unwrap();
    assert_eq!(cache.resolve(&url, "main").unwrap().commit, f.c4);

    let wrong = "WRONG-password-123";
    let pw_dir = tempfile::tempdir().unwrap();
    let pw_file = pw_dir.path().join("password");
    std::fs::write(&pw_file, format!("{wrong}\n")).unwrap();
    let creds = Credentials::from_lookup(|k| match k {
        "DRIFTLESS_GIT_USERNAME" => Some("alice".into()),
        "DRIFTLESS_GIT_PASSWORD_FILE" => Some(pw_file.display().to_string()),
        "DRIFTLESS_GIT_CA_FILE" => Some(ca.display().to_string()),
        _ => None,
    })
    .unwrap();
    let err = cache.fetch(&url, &creds).unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("authentication failed for {url}")), "{msg}");
    assert!(msg.contains("DRIFTLESS_GIT_PASSWORD_FILE"), "{msg}");
    assert!(!msg.contains(wrong) && !format!("{err:?}").contains(wrong), "{msg}");

    // No credentials at all.
    let err = cache
        .fetch(&url, &Credentials::anonymous().with_ca_file(&ca))
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");

    // Credentials in the URL are used, and never shown.
    let with_userinfo = format!("https://alice:{password}@127.0.0.1:{}/repo.git", server.port());
    cache
        .fetch(&with_userinfo, &Credentials::anonymous().with_ca_file(&ca))
        .unwrap();
    let bad_userinfo = format!("https://alice:{wrong}@127.0.0.1:{}/repo.git", server.port());
    let err = cache
        .fetch(&bad_userinfo, &Credentials::anonymous().with_ca_file(&ca))
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(wrong));
    let err = cache.resolve(&bad_userinfo, "nope").unwrap_err();
    assert!(!err.to_string().contains(wrong), "{err}");
    assert!(err.to_string().contains("https://***@127.0.0.1"), "{err}");
}

#[test]
fn credentials_are_never_sent_over_plain_http() {
    let (_d, cache) = cache();
    let port = free_port();
    let err = cache
        .fetch(
            &format!("http://127.0.0.1:{port}/repo.git"),
            &Credentials::basic("alice", "topsecret"),
        )
        .unwrap_err();
    assert!(err.is_auth());
    assert!(err.to_string().contains("use an https:// URL"), "{err}");
    assert!(!err.to_string().contains("topsecret"));
}

// ---------- ssh through sshd ----------

#[test]
fn ssh_fetch_with_key_and_known_hosts() {
    let Some(sshd) = sshd() else { return };
    let f = fixture();
    let (_d, cache) = cache();
    let url = format!("ssh://{}@127.0.0.1:{}{}", sshd.user, sshd.server.port, f.bare.display());
    let creds = Credentials::ssh(&sshd.user_key, &sshd.known_hosts);
    cache.fetch(&url, &creds).unwrap();
    assert_eq!(cache.resolve(&url, "main").unwrap().commit, f.c4);
    assert_eq!(cache.resolve(&url, "v1.2.0").unwrap().commit, f.c2);
    cache.fetch(&url, &creds).unwrap();

    // A key the server does not know.
    let (_d2, other_cache) = cache_pair();
    let err = other_cache
        .fetch(&url, &Credentials::ssh(&sshd.other_key, &sshd.known_hosts))
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");

    // A known_hosts without this server: host key checking is strict.
    let empty_hosts = sshd.dir.path().join("empty_known_hosts");
    std::fs::write(&empty_hosts, "").unwrap();
    let err = other_cache
        .fetch(&url, &Credentials::ssh(&sshd.user_key, &empty_hosts))
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("host key"), "{err}");
}

fn cache_pair() -> (tempfile::TempDir, GitCache) {
    cache()
}

#[test]
fn a_fetch_waits_for_another_fetch_of_the_same_url_and_times_out_clearly() {
    let f = fixture();
    let d = tempfile::tempdir().unwrap();
    let cache = GitCache::new(d.path().to_path_buf()).with_timeout(Duration::from_secs(1));
    let url = f.bare.to_str().unwrap();
    // Hold the URL's lock as another process's fetch would (layout documented in cache.rs).
    let mirror = cache.mirror_path(url).unwrap();
    let key = mirror.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::create_dir_all(d.path().join("locks")).unwrap();
    let lock = std::fs::File::create(d.path().join("locks").join(format!("{key}.lock"))).unwrap();
    lock.lock().unwrap();
    let err = cache.fetch(url, &Credentials::anonymous()).unwrap_err();
    match &err {
        SourceError::Timeout { waiting_for_lock, .. } => assert!(*waiting_for_lock, "{err}"),
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(err.to_string().contains("another fetch"), "{err}");
    lock.unlock().unwrap();
    cache.fetch(url, &Credentials::anonymous()).unwrap();
}

//! Shared support for driftless's end-to-end tests. No product code lives here.
//!
//! - [`GitRepo`]: a work repository and a bare repository built with the real `git` CLI in an
//!   isolated environment; [`GitRepo::commit`] commits and pushes to the bare repository.
//! - [`GitHttpServer`]: the real `git http-backend` behind a small HTTP/1.1 CGI bridge on
//!   127.0.0.1, serving bare repositories over smart HTTP, optionally with basic auth and TLS
//!   ([`GitHttpOptions`]).
//! - [`Serve`]: a `driftless serve` process on a free port, ready-checked, stderr captured to a
//!   file, stopped on drop (SIGTERM, then SIGKILL).
//! - [`helm`]: the real Helm as the native chart renderer's oracle ([`helm_binary`],
//!   [`helm_template`], [`compare_objects`]).
//! - [`http`]: a tiny blocking HTTP/1.1 client and [`hmac_sha256_hex`] for webhook signatures.
//! - [`poll`]: wait for a condition with a deadline instead of sleeping; [`free_port`] and
//!   [`wait_for_port`] for servers started as child processes.

mod git;
mod githttp;
pub mod helm;
pub mod http;
mod serve;

use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

pub use git::{GitRepo, git, git_with_env};
pub use githttp::{GitHttpOptions, GitHttpServer};
pub use helm::{HelmArgs, compare_objects, helm_binary, helm_template, parse_rendered};
pub use http::{Response, hmac_sha256_hex};
pub use serve::Serve;

/// A free TCP port on 127.0.0.1 (bound, then released: a small race accepted in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Waits (up to 20 s) until something listens on 127.0.0.1:`port`; panics if `child` exits
/// first or the time runs out.
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

/// Calls `f` every `every` until it returns `Some`, or panics after `timeout` with `what` and
/// the last value `describe` gives (so a failure says what was seen).
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    poll_described(what, timeout, &mut f, String::new)
}

/// Like [`poll`], adding `describe()` (e.g. the last observed state) to the panic message.
pub fn poll_described<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {:?} waiting for {what}\n{}", timeout, describe());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

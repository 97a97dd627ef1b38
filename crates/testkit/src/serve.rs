//! A `driftless serve` process for end-to-end tests.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http};

/// A running `driftless serve`. Stopped on drop: SIGTERM, then SIGKILL after 5 s. When the
/// test is panicking, the drop prints the captured stderr.
pub struct Serve {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Serve {
    /// Starts `BIN serve ARGS --listen 127.0.0.1:PORT` on a free port with stderr appended to
    /// `log`, and waits (up to 60 s) until `/readyz` answers 200. Retries on another port if the
    /// chosen one was taken in the meantime; panics with the log if the process dies.
    pub fn start<I, S>(bin: &Path, args: I, log: &Path) -> Serve
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        for attempt in 0.. {
            let port = free_port();
            let mut serve = Serve::spawn(bin, &args, log, port);
            match serve.wait_ready(Duration::from_secs(60)) {
                Ok(()) => return serve,
                Err(e) if attempt < 3 && e.contains("cannot listen") => {
                    serve.child = None; // already exited
                    continue;
                }
                Err(e) => panic!(
                    "driftless serve did not become ready: {e}\n--- stderr ---\n{}",
                    serve.stderr()
                ),
            }
        }
        unreachable!()
    }

    fn spawn(bin: &Path, args: &[OsString], log: &Path, port: u16) -> Serve {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let child = Command::new(bin)
            .arg("serve")
            .args(args)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("DRIFTLESS_SERVER")
            .env_remove("DRIFTLESS_TOKEN")
            .env_remove("DRIFTLESS_TOKEN_FILE")
            .env(
                "DRIFTLESS_LOG",
                std::env::var("DRIFTLESS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Serve {
            child: Some(child),
            port,
            log: log.to_owned(),
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let url = format!("{}/readyz", self.url());
        loop {
            if let Ok(r) = http::get(&url, &[])
                && r.status == 200
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("exited with {status}; {}", self.stderr()));
            }
            if start.elapsed() > timeout {
                return Err(format!("/readyz not 200 after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id (None once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the process(es) wrote to stderr so far (the log file is shared by restarts
    /// that use the same path).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold the Child).
            let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
            assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        }
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(timeout)
    }

    /// `kill -9` and reap: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- driftless serve stderr ({}) ---\n{}",
                self.log.display(),
                self.stderr()
            );
        }
        if self.child.is_some() && self.terminate(Duration::from_secs(5)).is_none() {
            self.kill9();
        }
    }
}

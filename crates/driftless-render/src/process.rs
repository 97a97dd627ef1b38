//! Running an external tool with a deadline and an output cap.
//!
//! Plain `std` only: the child runs in its own process group so a timeout kills it *and*
//! anything it spawned (kustomize runs `git` for remote bases); pipes are drained by threads
//! so a chatty child cannot block on a full pipe; stdout is capped so a runaway tool cannot
//! exhaust memory. Reader threads report through channels with the same deadline, so a
//! grandchild that escaped the group and holds a pipe open cannot hang the render either.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How much stderr is kept for error messages.
const STDERR_KEEP: u64 = 16 * 1024;

/// Result of [`run`].
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The process exited on its own.
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// Stdout exceeded the cap; the process group was killed.
    OutputTooLarge,
}

/// Runs `cmd` (stdin closed) until it exits, `timeout` passes, or stdout exceeds `max_stdout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration, max_stdout: u64) -> io::Result<Outcome> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let deadline = Instant::now() + timeout;
    let mut child = cmd.spawn()?;
    let overflow = Arc::new(AtomicBool::new(false));

    let (out_tx, out_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let overflow = Arc::clone(&overflow);
        thread::spawn(move || {
            let mut buf = Vec::new();
            let res = stdout.take(max_stdout.saturating_add(1)).read_to_end(&mut buf);
            if buf.len() as u64 > max_stdout {
                overflow.store(true, Ordering::SeqCst);
            }
            let _ = out_tx.send(res.map(|_| buf));
        });
    }
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(STDERR_KEEP).read_to_end(&mut buf);
            // Keep draining so the child never blocks on a full stderr pipe.
            let _ = io::copy(&mut stderr, &mut io::sink());
            let _ = err_tx.send(buf);
        });
    }

    let status = loop {
        if overflow.load(Ordering::SeqCst) {
            kill_group(&mut child);
            return Ok(Outcome::OutputTooLarge);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            return Ok(Outcome::TimedOut);
        }
        thread::sleep(Duration::from_millis(10));
    };

    let remaining = || deadline.saturating_duration_since(Instant::now());
    let stdout = match out_rx.recv_timeout(remaining()) {
        Ok(Ok(buf)) => buf,
        Ok(Err(e)) => return Err(e),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            kill_group(&mut child);
            return Ok(Outcome::TimedOut);
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
    };
    if stdout.len() as u64 > max_stdout {
        return Ok(Outcome::OutputTooLarge);
    }
    let stderr = err_rx
        .recv_timeout(remaining().max(Duration::from_millis(100)))
        .unwrap_or_default();
    Ok(Outcome::Exited { status, stdout, stderr })
}

/// Kills the child's process group (best effort), then the child, and reaps it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        // The child leads its own group (process_group(0)), so `-pid` names the group.
        // `kill(1)` avoids a libc dependency for one call.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn captures_output() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
            1024,
        )
        .unwrap();
        let Outcome::Exited { status, stdout, stderr } = out else {
            panic!("{out:?}")
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stdout, b"out\n");
        assert_eq!(stderr, b"err\n");
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let start = Instant::now();
        let out = run(
            // The grandchild `sleep` keeps stdout open; killing only `sh` would hang readers.
            Command::new("sh").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
            1024,
        )
        .unwrap();
        assert!(matches!(out, Outcome::TimedOut), "{out:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_cap_stops_the_process() {
        let out = run(
            Command::new("sh").args(["-c", "yes driftless"]),
            Duration::from_secs(20),
            64 * 1024,
        )
        .unwrap();
        assert!(matches!(out, Outcome::OutputTooLarge), "{out:?}");
    }
}

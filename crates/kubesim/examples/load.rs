//! Load generator for kubesim: fills it with ConfigMaps over HTTP, then measures sustained
//! request rate and latency for a mix of GET, LIST (label selector, limit=100) and merge
//! PATCH over keep-alive connections, and reports the process's resident memory.
//!
//! ```text
//! cargo run --release -p kubesim --example load -- --objects 100000 --seconds 10 --concurrency 16
//! ```
//!
//! By default kubesim runs in this process (on the same 2-thread runtime as the clients, so
//! the figures include the client's own CPU cost, and RSS is kubesim's plus the client's).
//! With `--url http://host:port` it loads an external kubesim instead; RSS is then only this
//! client's and not meaningful.
//!
//! The client is deliberately minimal: one hyper 1 HTTP/1.1 connection per worker, requests
//! sent one after another on it (keep-alive), no pooling layer in between.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Debug, Clone)]
struct Args {
    objects: usize,
    seconds: u64,
    concurrency: usize,
    namespaces: usize,
    url: Option<String>,
    /// Percentages of GET, LIST and PATCH (the rest of 100 is PATCH).
    get_pct: u32,
    list_pct: u32,
}

fn parse_args() -> Args {
    let mut a = Args {
        objects: 100_000,
        seconds: 10,
        concurrency: 16,
        namespaces: 100,
        url: None,
        get_pct: 70,
        list_pct: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--objects" => a.objects = val().parse().unwrap_or_else(|_| usage("--objects: a number")),
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage("--seconds: a number")),
            "--concurrency" => a.concurrency = val().parse().unwrap_or_else(|_| usage("--concurrency: a number")),
            "--namespaces" => a.namespaces = val().parse().unwrap_or_else(|_| usage("--namespaces: a number")),
            "--url" => a.url = Some(val()),
            "--mix" => {
                // --mix GET,LIST (percentages; PATCH gets the rest), e.g. 70,10
                let v = val();
                let parts: Vec<u32> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                match parts.as_slice() {
                    [g, l] if g + l <= 100 => {
                        a.get_pct = *g;
                        a.list_pct = *l;
                    }
                    _ => usage("--mix GET%,LIST% (PATCH gets the rest), e.g. 70,10"),
                }
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a.concurrency = a.concurrency.max(1);
    a.namespaces = a.namespaces.max(1);
    a
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("error: {msg}");
    }
    eprintln!(
        "usage: load [--objects N] [--seconds S] [--concurrency C] [--namespaces K] [--mix GET%,LIST%] [--url http://host:port]"
    );
    std::process::exit(2)
}

/// Resident set size of this process in KiB, from /proc/self/status.
fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    authority: String,
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(authority: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            authority: authority.to_owned(),
            tx,
        })
    }

    /// Sends one request and reads the whole body; returns the status code.
    async fn send(&mut self, method: http::Method, path: &str, ctype: &str, body: Bytes) -> anyhow::Result<u16> {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, ctype)
            .header(http::header::USER_AGENT, "kubesim-load/1")
            .body(Full::new(body))?;
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status().as_u16();
        // Read the body fully: the response is not served until its bytes are consumed.
        let _ = resp.into_body().collect().await?.to_bytes();
        Ok(status)
    }
}

/// A small xorshift generator: each worker has its own, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn ns_of(i: usize, a: &Args) -> String {
    format!("load-{}", i % a.namespaces)
}

/// Label group of object i: independent of its namespace, so a LIST in one namespace with
/// `group=gK` scans the namespace and matches about a tenth of it.
fn group_of(i: usize, a: &Args) -> usize {
    (i / a.namespaces) % 10
}

fn configmap(i: usize, a: &Args) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("cm-{i}"),
            "namespace": ns_of(i, a),
            "labels": {"app": "load", "group": format!("g{}", group_of(i, a))}
        },
        "data": {"index": i.to_string(), "config.yaml": "log_level: info\nreplicas: 3\nfeature_x: true\n"}
    });
    Bytes::from(serde_json::to_vec(&body).expect("serializable"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Get,
    List,
    Patch,
}

const OPS: [Op; 3] = [Op::Get, Op::List, Op::Patch];

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Get => "GET configmap by name",
        Op::List => "LIST configmaps, namespace + labelSelector, limit=100",
        Op::Patch => "PATCH configmap (merge patch)",
    }
}

#[derive(Default)]
struct Samples {
    /// Latencies in microseconds, per op.
    lat: [Vec<u32>; 3],
    errors: [u64; 3],
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn fill(authority: &str, a: &Args) -> anyhow::Result<(Duration, u64)> {
    let mut c = Conn::open(authority).await?;
    for n in 0..a.namespaces {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("load-{n}")}});
        let s = c
            .send(
                http::Method::POST,
                "/api/v1/namespaces",
                "application/json",
                Bytes::from(body.to_string()),
            )
            .await?;
        anyhow::ensure!(s == 201 || s == 409, "creating namespace load-{n}: HTTP {s}");
    }
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..a.concurrency {
        let a = a.clone();
        let authority = authority.to_owned();
        workers.spawn(async move {
            let mut c = Conn::open(&authority).await?;
            let mut errors = 0u64;
            let mut i = w;
            while i < a.objects {
                let path = format!("/api/v1/namespaces/{}/configmaps", ns_of(i, &a));
                let s = c
                    .send(http::Method::POST, &path, "application/json", configmap(i, &a))
                    .await?;
                if s != 201 && s != 409 {
                    errors += 1;
                }
                i += a.concurrency;
            }
            anyhow::Ok(errors)
        });
    }
    let mut errors = 0;
    while let Some(r) = workers.join_next().await {
        errors += r??;
    }
    Ok((started.elapsed(), errors))
}

async fn run_load(authority: &str, a: &Args) -> anyhow::Result<(Duration, Samples)> {
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..a.concurrency {
        let a = a.clone();
        let authority = authority.to_owned();
        workers.spawn(async move {
            let mut c = Conn::open(&authority).await?;
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x2545_F491_4F6C_DD1D));
            let mut s = Samples::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let roll = (rng.next() % 100) as u32;
                let op = if roll < a.get_pct {
                    Op::Get
                } else if roll < a.get_pct + a.list_pct {
                    Op::List
                } else {
                    Op::Patch
                };
                let i = rng.below(a.objects.max(1));
                let (method, path, ctype, body) = match op {
                    Op::Get => (
                        http::Method::GET,
                        format!("/api/v1/namespaces/{}/configmaps/cm-{i}", ns_of(i, &a)),
                        "application/json",
                        Bytes::new(),
                    ),
                    Op::List => (
                        http::Method::GET,
                        format!(
                            "/api/v1/namespaces/{}/configmaps?labelSelector=group%3Dg{}&limit=100",
                            ns_of(i, &a),
                            rng.below(10)
                        ),
                        "application/json",
                        Bytes::new(),
                    ),
                    Op::Patch => {
                        n += 1;
                        (
                            http::Method::PATCH,
                            format!("/api/v1/namespaces/{}/configmaps/cm-{i}", ns_of(i, &a)),
                            "application/merge-patch+json",
                            Bytes::from(json!({"data": {"touched": format!("{w}-{n}")}}).to_string()),
                        )
                    }
                };
                let t0 = Instant::now();
                let status = c.send(method, &path, ctype, body).await?;
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                let k = OPS.iter().position(|o| *o == op).unwrap_or(0);
                s.lat[k].push(us);
                if status != 200 {
                    s.errors[k] += 1;
                }
            }
            anyhow::Ok(s)
        });
    }
    let mut all = Samples::default();
    while let Some(r) = workers.join_next().await {
        let s = r??;
        for k in 0..3 {
            all.lat[k].extend_from_slice(&s.lat[k]);
            all.errors[k] += s.errors[k];
        }
    }
    Ok((started.elapsed(), all))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = parse_args();
    let rss_start = rss_kib();
    // Keep the in-process server alive until the end.
    let (_sim, url) = match &a.url {
        Some(u) => (None, u.clone()),
        None => {
            let sim = kubesim::KubeSim::start(kubesim::Config::default()).await?;
            let url = sim.url().to_owned();
            (Some(sim), url)
        }
    };
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported, got {url}"))?
        .trim_end_matches('/')
        .to_owned();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    eprintln!(
        "kubesim load: {} objects in {} namespaces, {} connections, {}s, {} cores, target {url}",
        a.objects, a.namespaces, a.concurrency, a.seconds, cores
    );

    let (fill_time, fill_errors) = fill(&authority, &a).await?;
    let rss_filled = rss_kib();
    eprintln!(
        "created {} ConfigMaps in {:.1}s ({:.0}/s), {} errors",
        a.objects,
        fill_time.as_secs_f64(),
        a.objects as f64 / fill_time.as_secs_f64(),
        fill_errors
    );

    let (elapsed, mut s) = run_load(&authority, &a).await?;
    let rss_end = rss_kib();
    let secs = elapsed.as_secs_f64();

    println!(
        "### kubesim load ({} objects, {} connections, {} cores)\n",
        a.objects, a.concurrency, cores
    );
    println!("| operation | requests | req/s | p50 ms | p99 ms | non-2xx |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut total = 0usize;
    let mut all: Vec<u32> = Vec::new();
    for (k, op) in OPS.iter().enumerate() {
        s.lat[k].sort_unstable();
        let n = s.lat[k].len();
        total += n;
        all.extend_from_slice(&s.lat[k]);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            op_name(*op),
            n,
            n as f64 / secs,
            pct(&s.lat[k], 0.50),
            pct(&s.lat[k], 0.99),
            s.errors[k]
        );
    }
    all.sort_unstable();
    println!(
        "| **all (mix {}/{}/{} GET/LIST/PATCH)** | {} | **{:.0}** | {:.2} | {:.2} | {} |",
        a.get_pct,
        a.list_pct,
        100 - a.get_pct - a.list_pct,
        total,
        total as f64 / secs,
        pct(&all, 0.50),
        pct(&all, 0.99),
        s.errors.iter().sum::<u64>()
    );
    println!(
        "| create (POST, during fill) | {} | {:.0} | | | {} |",
        a.objects,
        a.objects as f64 / fill_time.as_secs_f64(),
        fill_errors
    );
    println!();
    let scope = if a.url.is_some() {
        "load client only"
    } else {
        "kubesim + load client, one process"
    };
    println!("| process RSS ({scope}) | |");
    println!("|---|---:|");
    println!("| at start | {} |", mib(rss_start));
    println!("| after creating {} ConfigMaps | {} |", a.objects, mib(rss_filled));
    println!("| after the {}s load run | {} |", a.seconds, mib(rss_end));
    Ok(())
}

//! `--server URL`: the CLI as a client of a running `driftless serve`.

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::{Cli, Command, Format, color_diff, print_table, print_value, short};

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {}", self.base, e.without_url()))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = v.get("error").and_then(Value::as_str).unwrap_or("request failed");
            bail!("{} ({status}): {msg}", self.base);
        }
        Ok(v)
    }
    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn seg(s: &str) -> String {
    // App names are RFC 1123 labels; anything else cannot name an app, so refuse it rather
    // than build an odd URL.
    s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// Runs one command against the server; returns the exit code.
pub async fn run(cli: &Cli, url: &str) -> Result<u8> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = match (&cli.token_file, std::env::var("DRIFTLESS_TOKEN").ok()) {
        (Some(p), _) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the token from {}", p.display()))?
                .trim()
                .to_owned(),
        ),
        (None, Some(t)) if !t.is_empty() => Some(t),
        _ => None,
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .context("building the HTTP client")?;
    let c = Client {
        http,
        base: url.trim_end_matches('/').to_owned(),
        token,
    };
    let fmt = cli.output;
    match &cli.command {
        Command::Apps | Command::Status { app: None } => {
            let apps = c.get("/api/v1/apps").await?;
            if fmt != Format::Table {
                print_value(fmt, &apps)?;
            } else {
                let mut rows = vec![vec![
                    "NAME".into(),
                    "SYNC".into(),
                    "HEALTH".into(),
                    "REVISION".into(),
                    "AUTOMATED".into(),
                    "MESSAGE".into(),
                ]];
                for a in apps.as_array().into_iter().flatten() {
                    let s = |k: &str| a[k].as_str().unwrap_or("").to_owned();
                    rows.push(vec![
                        s("name"),
                        s("sync"),
                        s("health"),
                        short(&s("revision")).to_owned(),
                        a["automated"].as_bool().unwrap_or(false).to_string(),
                        s("message"),
                    ]);
                }
                print_table(rows);
            }
            Ok(0)
        }
        Command::Status { app: Some(app) } | Command::Get { app } => {
            let v = c.get(&format!("/api/v1/apps/{}", seg(app))).await?;
            if fmt != Format::Table {
                print_value(fmt, &v)?;
            } else {
                println!("Name:       {}", v["name"].as_str().unwrap_or(""));
                println!("Revision:   {}", short(v["revision"].as_str().unwrap_or("")));
                println!("Sync:       {}", v["sync"].as_str().unwrap_or(""));
                println!("Health:     {}", v["health"].as_str().unwrap_or(""));
                if let Some(m) = v["message"].as_str().filter(|m| !m.is_empty()) {
                    println!("Message:    {m}");
                }
                println!();
                let mut rows = vec![vec!["OBJECT".into(), "SYNC".into(), "HEALTH".into(), "MESSAGE".into()]];
                for o in v["objects"].as_array().into_iter().flatten() {
                    let obj = &o["object"];
                    let ns = obj["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
                    rows.push(vec![
                        format!(
                            "{}/{ns}{}",
                            obj["kind"].as_str().unwrap_or(""),
                            obj["name"].as_str().unwrap_or("")
                        ),
                        o["action"].as_str().unwrap_or("").into(),
                        o["health"]["status"].as_str().unwrap_or("").into(),
                        o["health"]["message"].as_str().unwrap_or("").into(),
                    ]);
                }
                print_table(rows);
            }
            Ok(0)
        }
        Command::Diff { app } => {
            let v = c.get(&format!("/api/v1/apps/{}/diff", seg(app))).await?;
            if fmt != Format::Table {
                print_value(fmt, &v)?;
            } else {
                for ch in v["changes"].as_array().into_iter().flatten() {
                    match ch["diff"].as_str() {
                        Some(d) => print!("{}", color_diff(d)),
                        None => println!(
                            "# {} {}",
                            ch["action"].as_str().unwrap_or(""),
                            ch["object"].as_str().unwrap_or("")
                        ),
                    }
                }
            }
            Ok(if v["inSync"].as_bool() == Some(true) { 0 } else { 1 })
        }
        Command::Sync {
            app,
            dry_run,
            prune,
            confirm_prune,
            force_conflicts,
            ..
        } => {
            let v = c.post(&format!("/api/v1/apps/{}/sync", seg(app)), json!({"dryRun": dry_run, "prune": prune, "confirmPrune": confirm_prune, "forceConflicts": force_conflicts})).await?;
            print_value(if fmt == Format::Table { Format::Json } else { fmt }, &v)?;
            Ok(if v["outcome"] == "succeeded" { 0 } else { 1 })
        }
        Command::History { app, limit } => {
            let v = c
                .get(&format!("/api/v1/apps/{}/history?limit={limit}", seg(app)))
                .await?;
            if fmt != Format::Table {
                print_value(fmt, &v)?;
            } else {
                let mut rows = vec![vec![
                    "ID".into(),
                    "REVISION".into(),
                    "TRIGGER".into(),
                    "OUTCOME".into(),
                    "MESSAGE".into(),
                ]];
                for e in v.as_array().into_iter().flatten() {
                    rows.push(vec![
                        e["id"].to_string(),
                        short(e["revision"].as_str().unwrap_or("")).into(),
                        e["trigger"].as_str().unwrap_or("").into(),
                        e["outcome"].as_str().unwrap_or("").into(),
                        e["message"].as_str().unwrap_or("").into(),
                    ]);
                }
                print_table(rows);
            }
            Ok(0)
        }
        Command::Rollback {
            app,
            id: Some(id),
            unpin: false,
            ..
        } => {
            let v = c
                .post(&format!("/api/v1/apps/{}/rollback/{id}", seg(app)), json!({}))
                .await?;
            print_value(if fmt == Format::Table { Format::Json } else { fmt }, &v)?;
            Ok(if v["outcome"] == "succeeded" { 0 } else { 1 })
        }
        Command::Refresh { app } => {
            c.post(&format!("/api/v1/apps/{}/refresh", seg(app)), json!({})).await?;
            println!("{app}: refresh queued");
            Ok(0)
        }
        other => bail!("{} is not available with --server; run it locally", command_name(other)),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Render { .. } => "render",
        Command::Rollback { .. } => "rollback --unpin",
        Command::Health { .. } => "health",
        Command::Serve(_) => "serve",
        Command::Bench(_) => "bench",
        _ => "this command",
    }
}

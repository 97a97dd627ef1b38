//! `driftless`: the command line. Thin by design: it parses flags, loads Application specs,
//! connects to clusters and prints; the work is in `driftless-engine`.

mod bench;
mod client;
mod secrets;
mod serve;
mod validate;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use driftless_cluster::ClusterClient;
use driftless_core::health::{self, HealthStatus};
use driftless_core::plan::{Action, Plan};
use driftless_core::spec::{self, Application};
use driftless_engine::{Engine, EngineError, Progress, SyncOptions, short};
use driftless_store::{ApplyResult, SyncEntry, SyncId, SyncOutcome};
use serde_json::{Value, json};

/// GitOps for Kubernetes in one binary: Git → render → plan → server-side apply → prune →
/// health → history and rollback.
#[derive(Parser, Debug)]
#[command(name = "driftless", version, about, propagate_version = true)]
struct Cli {
    /// An Application file, or a directory of them.
    #[arg(long, global = true, env = "DRIFTLESS_APPS", default_value = "apps")]
    apps: PathBuf,
    /// Where history, inventories, git mirrors and the render cache live.
    #[arg(long, global = true, env = "DRIFTLESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the app's destination.context, then the current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Allow exec credential plugins in the kubeconfig (they run commands on this machine).
    #[arg(long, global = true)]
    allow_exec_credentials: bool,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Log filter (e.g. `info`, `driftless_engine=debug`); logs go to stderr.
    #[arg(long, global = true, env = "DRIFTLESS_LOG")]
    log: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// Talk to a running `driftless serve` at this URL instead of working locally.
    #[arg(long, global = true, env = "DRIFTLESS_SERVER")]
    server: Option<String>,
    /// Bearer token for --server, read from this file (or DRIFTLESS_TOKEN).
    #[arg(long, global = true, env = "DRIFTLESS_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List applications with their last sync.
    Apps,
    /// Show one application's objects: planned action and health.
    Get { app: String },
    /// Sync and health state of every application (or one), computed live.
    Status { app: Option<String> },
    /// Show what a sync would change. Exit 0: in sync; 1: differences; 2: error.
    Diff { app: String },
    /// Converge the cluster to Git, then wait for health.
    Sync {
        app: String,
        /// Plan only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune objects no longer in Git even if the app's syncPolicy.prune is off.
        #[arg(long)]
        prune: bool,
        /// Allow a prune larger than the app's pruneThreshold.
        #[arg(long)]
        confirm_prune: bool,
        /// Take ownership of fields other field managers own.
        #[arg(long)]
        force_conflicts: bool,
        /// Do not wait for health.
        #[arg(long)]
        no_wait: bool,
    },
    /// Past syncs of an application, newest first.
    History {
        app: String,
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Re-apply the manifests of history entry ID and pin the app to them until a newer
    /// commit arrives (or `--unpin`).
    Rollback {
        app: String,
        /// History entry to go back to (see `driftless history APP`).
        id: Option<i64>,
        /// Release a rollback pin instead.
        #[arg(long, conflicts_with = "id")]
        unpin: bool,
        /// Prune objects the earlier state did not have (with the same safety rules as sync).
        #[arg(long)]
        prune: bool,
        /// Allow a prune larger than the app's pruneThreshold.
        #[arg(long)]
        confirm_prune: bool,
    },
    /// Re-check an app against Git and the cluster now (with --server: queue a refresh).
    Refresh { app: String },
    /// Print the rendered manifests of the app's head revision.
    Render { app: String },
    /// Run continuously: poll and receive webhooks, sync automated apps, watch for drift and
    /// revert it (selfHeal), serve the HTTP API and /metrics, send notifications.
    Serve(serve::ServeArgs),
    /// Measure a scenario on kubesim (see BENCHMARKS.md); prints a table or `-o json`.
    Bench(bench::BenchArgs),
    /// Encrypt, decrypt and edit SOPS files (age, OpenPGP) with no sops binary and no cluster:
    /// `driftless secrets encrypt|decrypt|edit ...` (see `driftless secrets --help`).
    Secrets(secrets::SecretsArgs),
    /// Check a checkout before merge, with no cluster: render, structural checks, SOPS files,
    /// signatures (--verify-key) and policies (--policy DIR, --baseline NAME). Exit 0: no
    /// deny finding; 1: at least one (each printed with its object's Kind/name); 2: error.
    Validate(validate::ValidateArgs),
    /// Assess the health of objects read from a YAML/JSON file.
    Health {
        /// File with one or more objects (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log.as_deref().unwrap_or(default_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => fmt.json().with_current_span(true).init(),
        LogFormat::Human => fmt.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by ": ", skipping a cause whose text the message before it
/// already contains (library errors often embed their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

struct Ctx {
    cli: Cli,
    apps: Vec<Application>,
    clusters: tokio::sync::Mutex<HashMap<Option<String>, ClusterClient>>,
}

impl Ctx {
    fn app(&self, name: &str) -> Result<&Application> {
        self.apps.iter().find(|a| a.metadata.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.apps.iter().map(|a| a.metadata.name.as_str()).collect();
            anyhow!(EngineError::UnknownApp(name.into())).context(format!(
                "applications in {}: {}",
                self.cli.apps.display(),
                if names.is_empty() {
                    "(none)".into()
                } else {
                    names.join(", ")
                }
            ))
        })
    }

    async fn cluster(&self, app: &Application) -> Result<ClusterClient> {
        let context = self
            .cli
            .context
            .clone()
            .or_else(|| app.spec.destination.context.clone());
        let mut cache = self.clusters.lock().await;
        if let Some(c) = cache.get(&context) {
            return Ok(c.clone());
        }
        let c = ClusterClient::connect(
            self.cli.kubeconfig.as_deref(),
            context.as_deref(),
            self.cli.allow_exec_credentials,
        )
        .await
        .with_context(|| format!("app {}: connecting to the cluster", app.metadata.name))?;
        cache.insert(context, c.clone());
        Ok(c)
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("driftless");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/driftless"),
        None => PathBuf::from(".driftless"),
    }
}

fn load_apps(path: &Path) -> Result<Vec<Application>> {
    if !path.exists() {
        bail!(
            "no Application specs at {}: pass --apps FILE|DIR or set DRIFTLESS_APPS",
            path.display()
        );
    }
    let apps = spec::load_path(path).map_err(|e| anyhow!("{e}"))?;
    Ok(apps)
}

async fn run(cli: Cli) -> Result<u8> {
    if let Command::Health { file } = &cli.command {
        return health_file(file, cli.output);
    }
    if let Command::Validate(args) = &cli.command {
        return validate::run(args, cli.output == Format::Json);
    }
    if let Command::Secrets(args) = &cli.command {
        return secrets::run(args).await;
    }
    if let Command::Bench(args) = &cli.command {
        // In `bench`, the global `--apps` is a count of applications to create (0: the
        // scenario's default).
        let mut args = args.clone();
        args.apps = match cli.apps.to_str() {
            Some("apps") => 0,
            Some(n) => n
                .parse()
                .with_context(|| format!("bench: --apps must be a number of applications, got {n:?}"))?,
            None => bail!("bench: --apps must be a number"),
        };
        let result = bench::run(&args).await?;
        if cli.output == Format::Table {
            print!("{}", bench::table(&result));
        } else {
            print_value(cli.output, &result)?;
        }
        return Ok(0);
    }
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    if let Command::Serve(args) = &cli.command {
        return serve::run(&cli, args, data_dir).await;
    }
    if let Some(url) = cli.server.clone() {
        return client::run(&cli, &url).await;
    }
    let apps = load_apps(&cli.apps)?;
    let engine = Engine::open(&data_dir).with_context(|| format!("opening the data dir {}", data_dir.display()))?;
    let ctx = Ctx {
        cli,
        apps,
        clusters: Default::default(),
    };
    match &ctx.cli.command {
        Command::Apps => cmd_apps(&ctx, &engine),
        Command::Get { app } => cmd_get(&ctx, &engine, app).await,
        Command::Status { app } => cmd_status(&ctx, &engine, app.as_deref()).await,
        Command::Refresh { app } => cmd_status(&ctx, &engine, Some(app)).await,
        Command::Diff { app } => cmd_diff(&ctx, &engine, app).await,
        Command::Sync {
            app,
            dry_run,
            prune,
            confirm_prune,
            force_conflicts,
            no_wait,
        } => {
            let opts = SyncOptions {
                dry_run: *dry_run,
                prune: *prune,
                confirm_prune: *confirm_prune,
                force_conflicts: *force_conflicts,
                trigger: "cli".into(),
                wait_health: !no_wait,
            };
            cmd_sync(&ctx, &engine, app, None, &opts).await
        }
        Command::History { app, limit } => cmd_history(&ctx, &engine, app, *limit),
        Command::Rollback {
            app,
            id,
            unpin,
            prune,
            confirm_prune,
        } => {
            let a = ctx.app(app)?;
            if *unpin {
                let released = engine.store().unpin(&a.metadata.name)?;
                println!(
                    "{}",
                    if released {
                        format!("{app}: pin released; the next sync follows {}", a.spec.source.git_ref)
                    } else {
                        format!("{app}: not pinned")
                    }
                );
                return Ok(0);
            }
            let id =
                id.ok_or_else(|| anyhow!("rollback needs a history ID (see `driftless history {app}`) or --unpin"))?;
            let opts = SyncOptions {
                prune: *prune,
                confirm_prune: *confirm_prune,
                trigger: "rollback".into(),
                wait_health: true,
                ..Default::default()
            };
            cmd_sync(&ctx, &engine, app, Some(SyncId(id)), &opts).await
        }
        Command::Render { app } => {
            let a = ctx.app(app)?;
            let rev = engine.resolve(a).await?;
            let rendered = engine.render(a, &rev, None).await?;
            for w in &rendered.warnings {
                eprintln!("warning: {w}");
            }
            // Secret values are never printed (invariant 4), in any output format.
            let objects: Vec<Value> = rendered.set.objects.iter().map(|o| mask_secret(&o.object)).collect();
            match ctx.cli.output {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": objects}))?
                ),
                _ => {
                    for (i, o) in objects.iter().enumerate() {
                        if i > 0 {
                            println!("---");
                        }
                        print!("{}", driftless_core::diff::to_yaml(o));
                    }
                }
            }
            Ok(0)
        }
        Command::Health { .. } | Command::Serve(_) | Command::Bench(_) | Command::Validate(_) | Command::Secrets(_) => {
            Ok(2)
        }
    }
}

/// Secret values are never printed (invariant 4): `render` shows keys only.
fn mask_secret(o: &Value) -> Value {
    let mut o = o.clone();
    if o.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(m) = o.get_mut(field).and_then(Value::as_object_mut) {
                for v in m.values_mut() {
                    *v = json!(driftless_core::diff::SECRET_MASK);
                }
            }
        }
    }
    o
}

fn print_value(format: Format, v: &Value) -> Result<()> {
    match format {
        Format::Yaml => print!("{}", driftless_core::diff::to_yaml(v)),
        _ => println!("{}", serde_json::to_string_pretty(v)?),
    }
    Ok(())
}

fn print_table(rows: Vec<Vec<String>>) {
    let widths: Vec<usize> = (0..rows.first().map(Vec::len).unwrap_or(0))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
}

fn ago(t: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = (now - t).max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn cmd_apps(ctx: &Ctx, engine: &Engine) -> Result<u8> {
    let mut items = Vec::new();
    for a in &ctx.apps {
        let last = engine.store().history(&a.metadata.name, 1)?.into_iter().next();
        let pin = engine.store().pin_of(&a.metadata.name)?;
        items.push((a, last, pin));
    }
    if ctx.cli.output != Format::Table {
        let v: Vec<Value> = items
            .iter()
            .map(|(a, last, pin)| {
                json!({
                    "name": a.metadata.name, "repoURL": driftless_source_redact(&a.spec.source.repo_url), "ref": a.spec.source.git_ref, "path": a.spec.source.path,
                    "namespace": a.spec.destination.namespace,
                    "lastSync": last.as_ref().map(|e| json!({"id": e.id.0, "revision": e.revision.commit, "outcome": e.outcome.as_str(), "startedAt": e.started_at})),
                    "pinnedTo": pin.as_ref().map(|p| p.sync_id.0),
                })
            })
            .collect();
        print_value(ctx.cli.output, &Value::Array(v))?;
        return Ok(0);
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "REPO".into(),
        "REF".into(),
        "PATH".into(),
        "NAMESPACE".into(),
        "LAST SYNC".into(),
        "REVISION".into(),
        "OUTCOME".into(),
    ]];
    for (a, last, pin) in items {
        let (when, rev, outcome) = match &last {
            Some(e) => (
                ago(e.started_at),
                short(&e.revision.commit).to_owned(),
                format!(
                    "{}{}",
                    e.outcome,
                    pin.as_ref()
                        .map(|p| format!(" (pinned to #{})", p.sync_id.0))
                        .unwrap_or_default()
                ),
            ),
            None => ("never".into(), "-".into(), "-".into()),
        };
        rows.push(vec![
            a.metadata.name.clone(),
            driftless_source_redact(&a.spec.source.repo_url),
            a.spec.source.git_ref.clone(),
            if a.spec.source.path.is_empty() {
                ".".into()
            } else {
                a.spec.source.path.clone()
            },
            a.spec.destination.namespace.clone(),
            when,
            rev,
            outcome,
        ]);
    }
    print_table(rows);
    Ok(0)
}

/// Repository URLs in app specs must not carry passwords (the spec loader refuses them), but a
/// token in a URL would still be printed here; redact anyway.
fn driftless_source_redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => format!("{scheme}://***@{host}"),
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

async fn cmd_get(ctx: &Ctx, engine: &Engine, name: &str) -> Result<u8> {
    let app = ctx.app(name)?;
    let cluster = ctx.cluster(app).await?;
    let st = engine.status(app, &cluster).await?;
    if ctx.cli.output != Format::Table {
        print_value(ctx.cli.output, &serde_json::to_value(&st)?)?;
        return Ok(0);
    }
    println!("Name:       {}", st.name);
    println!(
        "Source:     {} @ {} ({})",
        driftless_source_redact(&app.spec.source.repo_url),
        app.spec.source.git_ref,
        if app.spec.source.path.is_empty() {
            "."
        } else {
            &app.spec.source.path
        }
    );
    println!("Revision:   {}", short(&st.revision));
    println!("Sync:       {:?}", st.sync);
    println!(
        "Health:     {:?}{}",
        st.health.status,
        if st.health.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", st.health.message)
        }
    );
    if let Some(pin) = engine.store().pin_of(name)? {
        println!(
            "Pinned:     to sync #{} (commit {}) by a rollback",
            pin.sync_id.0,
            short(&pin.commit)
        );
    }
    if !st.message.is_empty() {
        println!("Notes:      {}", st.message);
    }
    println!();
    let mut rows = vec![vec![
        "KIND".into(),
        "NAMESPACE".into(),
        "NAME".into(),
        "SYNC".into(),
        "HEALTH".into(),
        "MESSAGE".into(),
    ]];
    for o in &st.objects {
        rows.push(vec![
            o.object.kind.clone(),
            o.object.namespace.clone().unwrap_or_default(),
            o.object.name.clone(),
            o.action.clone(),
            format!("{:?}", o.health.status),
            o.health.message.clone(),
        ]);
    }
    print_table(rows);
    Ok(0)
}

async fn cmd_status(ctx: &Ctx, engine: &Engine, only: Option<&str>) -> Result<u8> {
    let apps: Vec<&Application> = match only {
        Some(n) => vec![ctx.app(n)?],
        None => ctx.apps.iter().collect(),
    };
    let mut out = Vec::new();
    for app in apps {
        let r = async {
            let cluster = ctx.cluster(app).await?;
            Ok::<_, anyhow::Error>(engine.status(app, &cluster).await?)
        }
        .await;
        out.push((app, r));
    }
    if ctx.cli.output != Format::Table {
        let v: Vec<Value> = out
            .iter()
            .map(|(a, r)| match r {
                Ok(s) => json!({"name": s.name, "sync": s.sync, "health": s.health.status, "healthMessage": s.health.message, "revision": s.revision, "message": s.message, "violations": s.violations}),
                Err(e) => json!({"name": a.metadata.name, "sync": "Unknown", "health": "Unknown", "error": error_chain(e)}),
            })
            .collect();
        print_value(ctx.cli.output, &Value::Array(v))?;
    } else {
        let mut rows = vec![vec![
            "NAME".into(),
            "SYNC".into(),
            "HEALTH".into(),
            "REVISION".into(),
            "MESSAGE".into(),
        ]];
        for (a, r) in &out {
            rows.push(match r {
                Ok(s) => vec![
                    s.name.clone(),
                    format!("{:?}", s.sync),
                    format!("{:?}", s.health.status),
                    short(&s.revision).to_owned(),
                    if s.message.is_empty() {
                        s.health.message.clone()
                    } else {
                        s.message.clone()
                    },
                ],
                Err(e) => vec![
                    a.metadata.name.clone(),
                    "Unknown".into(),
                    "Unknown".into(),
                    "-".into(),
                    error_chain(e),
                ],
            });
        }
        print_table(rows);
        for s in out.iter().filter_map(|(_, r)| r.as_ref().ok()) {
            if !s.violations.is_empty() {
                let report = driftless_policy::Report {
                    violations: s.violations.clone(),
                    ..Default::default()
                };
                print!("\n{}: policy violations:\n{}", s.name, report.human());
            }
        }
    }
    Ok(if out.iter().any(|(_, r)| r.is_err()) { 2 } else { 0 })
}

fn color_diff(text: &str) -> String {
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return text.to_owned();
    }
    text.lines()
        .map(|l| {
            if l.starts_with("+++") || l.starts_with("---") {
                format!("\x1b[1m{l}\x1b[0m")
            } else if l.starts_with('+') {
                format!("\x1b[32m{l}\x1b[0m")
            } else if l.starts_with('-') {
                format!("\x1b[31m{l}\x1b[0m")
            } else if l.starts_with("@@") {
                format!("\x1b[36m{l}\x1b[0m")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

async fn cmd_diff(ctx: &Ctx, engine: &Engine, name: &str) -> Result<u8> {
    let app = ctx.app(name)?;
    let cluster = ctx.cluster(app).await?;
    let (rev, plan, warnings) = engine.diff(app, &cluster).await?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if ctx.cli.output != Format::Table {
        let steps: Vec<Value> = plan.steps.iter().filter(|s| !matches!(s.action, Action::Unchanged)).map(|s| json!({"object": s.object.to_string(), "action": driftless_engine::status_action(&s.action), "diff": s.diff.as_ref().map(|d| d.unified.clone())})).collect();
        print_value(
            ctx.cli.output,
            &json!({"app": name, "revision": rev.commit, "inSync": !plan.has_changes(), "changes": steps}),
        )?;
    } else {
        for s in &plan.steps {
            match &s.action {
                Action::Unchanged => {}
                Action::Prune => println!(
                    "{}",
                    color_diff(&format!("--- {} (live)\n+++ (pruned: no longer in Git)", s.object))
                ),
                Action::PruneSkipped { reason } => println!("# {} is no longer in Git but is kept: {reason}", s.object),
                _ => {
                    if let Some(d) = &s.diff {
                        print!("{}", color_diff(&d.unified));
                    }
                }
            }
        }
        eprintln!("{name} @ {}: {}", short(&rev.commit), plan.summary());
    }
    Ok(if plan.has_changes() { 1 } else { 0 })
}

fn result_word(r: ApplyResult) -> &'static str {
    r.as_str()
}

async fn cmd_sync(ctx: &Ctx, engine: &Engine, name: &str, rollback: Option<SyncId>, opts: &SyncOptions) -> Result<u8> {
    let app = ctx.app(name)?;
    let cluster = ctx.cluster(app).await?;
    let quiet = ctx.cli.output != Format::Table;
    let progress = move |p: Progress| {
        if quiet {
            return;
        }
        match p {
            Progress::Revision(r) => eprintln!("{name}: revision {} ({}: {})", short(&r.commit), r.author, r.message),
            Progress::Planned(plan) => eprintln!("{name}: plan: {}", plan.summary()),
            Progress::Applied(r) => {
                if r.result != ApplyResult::Unchanged {
                    let msg = if r.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.message)
                    };
                    eprintln!("  {:<10} {}{msg}", result_word(r.result), r.object);
                }
            }
            Progress::Waiting(pending) => {
                let list: Vec<String> = pending
                    .iter()
                    .take(5)
                    .map(|(o, h)| format!("{o} {:?} ({})", h.status, h.message))
                    .collect();
                eprintln!("  waiting for health: {}", list.join("; "));
            }
        }
    };
    let report = match rollback {
        Some(id) => engine.rollback(app, &cluster, id, opts, &progress).await,
        None => engine.sync(app, &cluster, opts, &progress).await,
    };
    let report = match report {
        Ok(r) => r,
        Err(e @ EngineError::PruneRefused { .. }) => {
            eprintln!("error: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    if opts.dry_run {
        print_plan(&report.plan);
    }
    if quiet {
        let results: Vec<Value> = report.results.iter().map(|r| json!({"object": r.object.to_string(), "action": r.action, "result": r.result.as_str(), "message": r.message})).collect();
        let health: Vec<Value> = report
            .health
            .iter()
            .map(|(o, h)| json!({"object": o.to_string(), "health": h.status, "message": h.message}))
            .collect();
        print_value(
            ctx.cli.output,
            &json!({"app": name, "id": report.id.map(|i| i.0), "revision": report.revision.commit, "outcome": report.outcome.as_str(), "message": report.message, "results": results, "health": health, "appHealth": report.app_health.status}),
        )?;
    } else {
        for (o, h) in report.health.iter().filter(|(_, h)| h.status != HealthStatus::Healthy) {
            eprintln!("  unhealthy  {o}: {:?} {}", h.status, h.message);
        }
        println!(
            "{name}: {}{}",
            report.message,
            report.id.map(|i| format!(" [history #{}]", i.0)).unwrap_or_default()
        );
    }
    Ok(match report.outcome {
        SyncOutcome::Succeeded => 0,
        _ => 1,
    })
}

fn print_plan(plan: &Plan) {
    for s in &plan.steps {
        let what = match &s.action {
            Action::Unchanged => continue,
            Action::PruneSkipped { reason } => format!("keep ({reason})"),
            other => driftless_engine::status_action(other).to_owned(),
        };
        println!("  would {what:<10} {}", s.object);
    }
}

pub(crate) fn history_json(e: &SyncEntry) -> Value {
    json!({
        "id": e.id.0, "app": e.app, "revision": e.revision.commit, "author": e.revision.author, "commitMessage": e.revision.message,
        "ref": e.revision.requested_ref, "trigger": e.trigger, "outcome": e.outcome.as_str(), "message": e.message,
        "summary": e.plan_summary, "manifestsDigest": e.manifests_digest, "startedAt": e.started_at, "finishedAt": e.finished_at,
        "results": e.results.iter().map(|r| json!({"object": r.object.to_string(), "action": r.action, "result": r.result.as_str(), "message": r.message})).collect::<Vec<_>>(),
    })
}

fn cmd_history(ctx: &Ctx, engine: &Engine, name: &str, limit: usize) -> Result<u8> {
    let app = ctx.app(name)?;
    let entries = engine.store().history(&app.metadata.name, limit)?;
    if ctx.cli.output != Format::Table {
        print_value(
            ctx.cli.output,
            &Value::Array(entries.iter().map(history_json).collect()),
        )?;
        return Ok(0);
    }
    let mut rows = vec![vec![
        "ID".into(),
        "STARTED".into(),
        "REVISION".into(),
        "TRIGGER".into(),
        "OUTCOME".into(),
        "SUMMARY".into(),
        "MESSAGE".into(),
    ]];
    for e in &entries {
        let s = &e.plan_summary;
        let summary = format!(
            "+{} ~{} -{}",
            s["create"].as_u64().unwrap_or(0),
            s["update"].as_u64().unwrap_or(0),
            s["prune"].as_u64().unwrap_or(0)
        );
        rows.push(vec![
            e.id.0.to_string(),
            ago(e.started_at),
            short(&e.revision.commit).to_owned(),
            e.trigger.clone(),
            e.outcome.to_string(),
            summary,
            e.message.clone(),
        ]);
    }
    print_table(rows);
    Ok(0)
}

fn health_file(file: &Path, format: Format) -> Result<u8> {
    let (text, label) = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        (s, "-".to_owned())
    } else {
        (
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            file.display().to_string(),
        )
    };
    let objects = health::parse_objects(&text, &label).map_err(|e| anyhow!("{e}"))?;
    let reports: Vec<(String, health::HealthReport)> = objects
        .iter()
        .map(|o| {
            (
                o.object_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| o.origin.to_string()),
                health::assess(&o.object),
            )
        })
        .collect();
    let worst = health::worst(reports.iter().map(|(_, h)| h));
    if format != Format::Table {
        let items: Vec<Value> = reports
            .iter()
            .map(|(o, h)| json!({"object": o, "health": h.status, "message": h.message}))
            .collect();
        print_value(format, &json!({"health": worst.status, "objects": items}))?;
    } else {
        let mut rows = vec![vec!["OBJECT".into(), "HEALTH".into(), "MESSAGE".into()]];
        for (o, h) in &reports {
            rows.push(vec![o.clone(), format!("{:?}", h.status), h.message.clone()]);
        }
        print_table(rows);
    }
    Ok(if worst.status == HealthStatus::Healthy { 0 } else { 1 })
}

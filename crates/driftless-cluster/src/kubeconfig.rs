//! Loading a kubeconfig, refusing credential plugins that run commands.
//!
//! A kubeconfig can name programs to run for credentials: `users[].user.exec` (client-go
//! credential plugins) and the legacy `auth-provider` with a `cmd-path` (gcp). Whoever can
//! write the kubeconfig can then run code as driftless — Flux CVE-2022-24817 was exactly
//! this, with kubeconfigs taken from Secrets. So both are refused unless the operator opts
//! in (`allow_exec`), and the error says how to.
//!
//! Only the user the selected context points at is checked, because it is the only one
//! kube-rs will use; every `users[]` entry with that name is checked, so a duplicate entry
//! cannot slip a plugin past whichever one a loader happens to pick.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::ClusterError;

/// A kubeconfig ready to connect with, and where it came from (for messages).
pub(crate) struct Loaded {
    pub(crate) config: kube::Config,
    pub(crate) context: String,
}

/// Reads the kubeconfig at `path`, else `$KUBECONFIG` (a list of files, merged), else
/// `~/.kube/config`; selects `context` or the current one; checks for exec plugins.
pub(crate) async fn load(path: Option<&Path>, context: Option<&str>, allow_exec: bool) -> Result<Loaded, ClusterError> {
    let (kubeconfig, origin) = match path {
        Some(p) => (
            Kubeconfig::read_from(p)
                .map_err(|e| ClusterError::Kubeconfig(format!("cannot read {}: {}", p.display(), chain(&e))))?,
            p.display().to_string(),
        ),
        None => {
            let origin = match std::env::var_os("KUBECONFIG") {
                Some(v) if !v.is_empty() => format!("$KUBECONFIG ({})", v.to_string_lossy()),
                _ => "~/.kube/config".to_owned(),
            };
            (
                Kubeconfig::read().map_err(|e| {
                    ClusterError::Kubeconfig(format!(
                        "cannot read {origin}: {} — pass --kubeconfig or set KUBECONFIG",
                        chain(&e)
                    ))
                })?,
                origin,
            )
        }
    };

    let context_name = match context {
        Some(c) => c.to_owned(),
        None => kubeconfig.current_context.clone().ok_or_else(|| {
            ClusterError::Kubeconfig(format!(
                "{origin} has no current-context; pass --context (available: {})",
                context_names(&kubeconfig)
            ))
        })?,
    };
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .ok_or_else(|| {
            ClusterError::Kubeconfig(format!(
                "context {context_name:?} not found in {origin} (available: {})",
                context_names(&kubeconfig)
            ))
        })?;
    let user = ctx.context.as_ref().and_then(|c| c.user.clone());
    if let Some(user) = &user {
        check_credential_plugins(&kubeconfig, user, allow_exec)?;
    }

    let options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: None,
        user: None,
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            ClusterError::Kubeconfig(format!(
                "cannot use context {context_name:?} from {origin}: {}",
                chain(&e)
            ))
        })?;
    Ok(Loaded {
        config,
        context: context_name,
    })
}

fn check_credential_plugins(kubeconfig: &Kubeconfig, user: &str, allow_exec: bool) -> Result<(), ClusterError> {
    if allow_exec {
        return Ok(());
    }
    for named in kubeconfig.auth_infos.iter().filter(|a| a.name == user) {
        let Some(info) = &named.auth_info else {
            continue;
        };
        if let Some(exec) = &info.exec {
            // The command name is shown (it is not a secret and helps the user recognise
            // it); its arguments and environment are not, as they may carry tokens.
            let command = exec.command.as_deref().unwrap_or("<none>");
            return Err(ClusterError::Kubeconfig(format!(
                "user {user:?} uses an exec credential plugin ({command}), which runs a program; \
                 refused by default (see Flux CVE-2022-24817). If you trust this kubeconfig, \
                 pass --allow-exec-plugins (allow_exec)"
            )));
        }
        if let Some(provider) = &info.auth_provider
            && provider.config.contains_key("cmd-path")
        {
            return Err(ClusterError::Kubeconfig(format!(
                "user {user:?} uses auth-provider {:?} with cmd-path, which runs a program; \
                 refused by default (see Flux CVE-2022-24817). If you trust this kubeconfig, \
                 pass --allow-exec-plugins (allow_exec)",
                provider.name
            )));
        }
    }
    Ok(())
}

fn context_names(kubeconfig: &Kubeconfig) -> String {
    let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::error_chain(e)
}

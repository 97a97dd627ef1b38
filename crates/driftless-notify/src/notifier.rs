//! The background notifier: subscription matching, per-receiver queues and workers, counters.
//!
//! `notify` only matches subscriptions and `try_send`s into bounded queues, so it never awaits,
//! never blocks and never fails; everything slow happens in one tokio task per receiver. A
//! counter of queued-or-in-flight deliveries (a `watch` channel) lets [`Notifier::flush`] wait
//! for the queues to drain at shutdown. Dropping the last clone of a [`Notifier`] closes the
//! queues; the workers finish what is queued and exit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::config::ResolvedReceiver;
use crate::delivery::{RetryPolicy, deliver};
use crate::{Event, NotifyConfig, NotifyError, Subscription};

/// Tuning for a [`Notifier`]; the defaults suit production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifierOptions {
    /// Events each receiver may have waiting; beyond that they are dropped and counted.
    pub queue_capacity: usize,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: 256,
            retry: RetryPolicy::default(),
        }
    }
}

/// Delivery counters of one receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStats {
    /// Events delivered (a 2xx answer, possibly after retries).
    pub sent: u64,
    /// Events given up on after the last attempt or a final status.
    pub failed: u64,
    /// Events dropped because the receiver's queue was full.
    pub dropped: u64,
    /// The last delivery error (URL redacted), for status pages.
    pub last_error: Option<String>,
}

/// Counters of all receivers, by receiver name (for metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyStats {
    /// Per receiver.
    pub receivers: BTreeMap<String, ReceiverStats>,
    /// Deliveries queued or in flight right now.
    pub pending: u64,
}

impl NotifyStats {
    /// Sum of `sent` over all receivers.
    pub fn sent(&self) -> u64 {
        self.receivers.values().map(|r| r.sent).sum()
    }
    /// Sum of `failed` over all receivers.
    pub fn failed(&self) -> u64 {
        self.receivers.values().map(|r| r.failed).sum()
    }
    /// Sum of `dropped` over all receivers.
    pub fn dropped(&self) -> u64 {
        self.receivers.values().map(|r| r.dropped).sum()
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct ReceiverSlot {
    name: String,
    queue: mpsc::Sender<Arc<Event>>,
    counters: Arc<Counters>,
}

struct Inner {
    /// Subscriptions with the index of their receiver in `receivers`.
    subscriptions: Vec<(Subscription, usize)>,
    receivers: Vec<ReceiverSlot>,
    pending: Arc<watch::Sender<usize>>,
}

/// Delivers in the background: `notify` never blocks and never fails the caller.
///
/// Cheap to clone; clones share queues and counters.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .iter()
            .flat_map(|i| i.receivers.iter().map(|r| r.name.as_str()))
            .collect();
        f.debug_struct("Notifier").field("receivers", &names).finish()
    }
}

impl Notifier {
    /// Start delivering for `config`: spawns one worker task per receiver on the current tokio
    /// runtime. Never fails: a receiver that does not validate (for example its `urlFile`
    /// vanished since the config was loaded) is logged and left out; outside a runtime the
    /// notifier is [disabled](Notifier::disabled) with an error log.
    pub fn new(config: NotifyConfig) -> Notifier {
        Notifier::with_options(config, NotifierOptions::default())
    }

    /// [`Notifier::new`] with tuning options.
    pub fn with_options(config: NotifyConfig, options: NotifierOptions) -> Notifier {
        let mut resolved = Vec::new();
        for receiver in &config.receivers {
            match receiver.resolve() {
                Ok(r) => resolved.push(r),
                Err(error) => tracing::error!(%error, "notification receiver left out"),
            }
        }
        match start(resolved, config.subscriptions, options) {
            Ok(notifier) => notifier,
            Err(error) => {
                tracing::error!(%error, "notifications disabled");
                Notifier::disabled()
            }
        }
    }

    /// Like [`Notifier::with_options`] but failing on any invalid receiver or subscription, or
    /// when called outside a tokio runtime.
    pub fn try_new(config: NotifyConfig, options: NotifierOptions) -> Result<Notifier, NotifyError> {
        config.validate()?;
        let resolved = config
            .receivers
            .iter()
            .map(|r| r.resolve())
            .collect::<Result<Vec<_>, _>>()?;
        start(resolved, config.subscriptions, options)
    }

    /// A notifier that sends nothing (no `--notifications` given).
    pub fn disabled() -> Notifier {
        Notifier { inner: None }
    }

    /// Whether any receiver is configured.
    pub fn is_enabled(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| !i.receivers.is_empty())
    }

    /// Queue `event` for every receiver subscribed to it. Returns at once; when a receiver's
    /// queue is full the event is dropped for that receiver, logged and counted.
    pub fn notify(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        let mut chosen = vec![false; inner.receivers.len()];
        for (subscription, index) in &inner.subscriptions {
            if !chosen[*index] && subscription.matches(&event.app, event.kind) {
                chosen[*index] = true;
            }
        }
        if !chosen.contains(&true) {
            return;
        }
        let event = Arc::new(event);
        for (slot, _) in inner.receivers.iter().zip(&chosen).filter(|(_, c)| **c) {
            // Count before sending so `flush` never sees zero while an event is on its way.
            inner.pending.send_modify(|n| *n += 1);
            if slot.queue.try_send(Arc::clone(&event)).is_err() {
                inner.pending.send_modify(|n| *n -= 1);
                let dropped = slot.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    receiver = %slot.name,
                    app = %event.app,
                    kind = %event.kind,
                    dropped_total = dropped,
                    "notification queue full; event dropped"
                );
            }
        }
    }

    /// Counters by receiver, for metrics.
    pub fn stats(&self) -> NotifyStats {
        let Some(inner) = &self.inner else {
            return NotifyStats::default();
        };
        let receivers = inner
            .receivers
            .iter()
            .map(|slot| {
                let c = &slot.counters;
                let stats = ReceiverStats {
                    sent: c.sent.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
                };
                (slot.name.clone(), stats)
            })
            .collect();
        NotifyStats {
            receivers,
            pending: *inner.pending.borrow() as u64,
        }
    }

    /// Wait until every queued delivery is done (sent or failed), at most `timeout`. For
    /// graceful shutdown and tests; what is still pending after the timeout is logged.
    pub async fn flush(&self, timeout: Duration) {
        let Some(inner) = &self.inner else { return };
        let mut pending = inner.pending.subscribe();
        if tokio::time::timeout(timeout, pending.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                pending = *inner.pending.borrow(),
                "notifications still pending after flush timeout"
            );
        }
    }
}

fn start(
    receivers: Vec<ResolvedReceiver>,
    subscriptions: Vec<Subscription>,
    options: NotifierOptions,
) -> Result<Notifier, NotifyError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
    let client = crate::delivery::build_client()?;
    let pending = Arc::new(watch::Sender::new(0usize));
    let mut slots = Vec::new();
    for receiver in receivers {
        let (queue, rx) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        slots.push(ReceiverSlot {
            name: receiver.name.clone(),
            queue,
            counters: Arc::clone(&counters),
        });
        runtime.spawn(worker(
            receiver,
            rx,
            client.clone(),
            options.retry,
            counters,
            Arc::clone(&pending),
        ));
    }
    let subscriptions = subscriptions
        .into_iter()
        .filter_map(|s| {
            let index = slots.iter().position(|slot| slot.name == s.receiver)?;
            Some((s, index))
        })
        .collect();
    Ok(Notifier {
        inner: Some(Arc::new(Inner {
            subscriptions,
            receivers: slots,
            pending,
        })),
    })
}

async fn worker(
    receiver: ResolvedReceiver,
    mut queue: mpsc::Receiver<Arc<Event>>,
    client: reqwest::Client,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    pending: Arc<watch::Sender<usize>>,
) {
    while let Some(event) = queue.recv().await {
        match deliver(&client, &receiver, &event, &retry).await {
            Ok(attempts) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    receiver = %receiver.name,
                    app = %event.app,
                    kind = %event.kind,
                    attempts,
                    "notification sent"
                );
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    receiver = %receiver.name,
                    app = %event.app,
                    kind = %event.kind,
                    error = %error,
                    "notification failed"
                );
                if let Ok(mut last) = counters.last_error.lock() {
                    *last = Some(error.to_string());
                }
            }
        }
        pending.send_modify(|n| *n -= 1);
    }
}

//! Test hooks: request statistics and fault injection, reachable in-process through
//! [`crate::KubeSim`] and over HTTP under `/debug/kubesim/`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Request counters.
#[derive(Default)]
pub struct Stats {
    by_verb_resource: Mutex<BTreeMap<(String, String), u64>>,
    writes: AtomicU64,
    requests: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatsSnapshot {
    /// All API requests served (discovery included).
    pub requests: u64,
    /// Mutating requests (create, update, patch, delete, deletecollection) that were not
    /// dry runs — what "writes" means in tests and benchmarks.
    pub writes: u64,
    /// Requests by `verb` then resource (`deployments.apps`, `configmaps`, `discovery`).
    pub by_verb: BTreeMap<String, BTreeMap<String, u64>>,
}

impl StatsSnapshot {
    /// Requests of one verb across resources.
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).map(|m| m.values().sum()).unwrap_or(0)
    }
}

impl Stats {
    /// Counts one request.
    pub fn record(&self, verb: &str, resource: &str, write: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if write {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let mut m = self.by_verb_resource.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((verb.to_owned(), resource.to_owned())).or_default() += 1;
    }

    /// Current counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let m = self.by_verb_resource.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_verb: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((verb, res), n) in m.iter() {
            by_verb.entry(verb.clone()).or_default().insert(res.clone(), *n);
        }
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            by_verb,
        }
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.by_verb_resource.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.writes.store(0, Ordering::Relaxed);
        self.requests.store(0, Ordering::Relaxed);
    }
}

/// Faults injected into API requests (never into `/debug`, `/healthz`, discovery of the
/// debug endpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultConfig {
    /// Added latency per request, milliseconds.
    pub latency_ms: u64,
    /// Share of requests (0.0..=1.0) answered with 500 InternalError.
    pub error_rate: f64,
    /// Share of requests (0.0..=1.0) answered with 429 and `Retry-After`.
    pub throttle_rate: f64,
    /// Seconds in the 429's Retry-After header (default 1).
    pub retry_after_seconds: u32,
    /// Only requests with these verbs are affected (empty = all).
    pub verbs: Vec<String>,
}

/// What the fault injector decided for one request.
pub enum Injected {
    /// Serve it normally.
    None,
    /// Answer 500.
    Error,
    /// Answer 429.
    Throttle(u32),
}

/// Fault state shared by request handlers.
#[derive(Default)]
pub struct Faults {
    config: Mutex<FaultConfig>,
    rng: AtomicU64,
}

impl Faults {
    /// Replaces the configuration.
    pub fn set(&self, config: FaultConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Current configuration.
    pub fn get(&self) -> FaultConfig {
        self.config.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Decides the latency and fault for a request with `verb`.
    pub fn decide(&self, verb: &str) -> (u64, Injected) {
        let c = self.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !c.verbs.is_empty() && !c.verbs.iter().any(|v| v == verb) {
            return (0, Injected::None);
        }
        let roll = self.next_unit();
        let injected = if roll < c.error_rate {
            Injected::Error
        } else if roll < c.error_rate + c.throttle_rate {
            Injected::Throttle(c.retry_after_seconds.max(1))
        } else {
            Injected::None
        };
        (c.latency_ms, injected)
    }

    /// A uniform number in [0, 1) from a splitmix64 sequence: deterministic enough for tests,
    /// no dependency needed.
    fn next_unit(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

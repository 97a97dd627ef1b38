//! `/openapi/v3` routes, backed by the documents `kubesim-schema` generates.
//!
//! Generating the documents is far more work than serving any object (the index alone builds
//! and hashes every group-version's document), and clients fetch them on every `kubectl
//! apply`/`explain` and kube-rs discovery. So serialised documents are cached, keyed by the
//! set of served types: the documents depend on nothing else, and registering or removing a
//! CRD changes the set, which makes a new cache entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kubesim_schema::ResourceType;
use kubesim_schema::openapi::{openapi_v3_group_version, openapi_v3_index};
use serde_json::Value;

/// `/openapi/v3`.
pub fn index(types: &[ResourceType]) -> Value {
    openapi_v3_index(types)
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn group_version(types: &[ResourceType], path: &str) -> Option<Value> {
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        ["api", v] => openapi_v3_group_version(types, "", v),
        ["apis", g, v] => openapi_v3_group_version(types, g, v),
        _ => None,
    }
}

/// Documents generated for one set of types: `None` path = the index.
struct Entry {
    types: Vec<ResourceType>,
    docs: HashMap<Option<String>, Option<Bytes>>,
}

/// A few type sets (several kubesims with different CRDs may share a test process).
const CACHED_TYPE_SETS: usize = 4;

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The serialised index (`path` None) or group-version document (`path` Some), from the
/// cache when the same set of types was served before; `None` when the group-version is not
/// served.
pub fn cached(types: &[Arc<ResourceType>], path: Option<&str>) -> Option<Bytes> {
    let same = |e: &Entry| e.types.len() == types.len() && e.types.iter().zip(types).all(|(a, b)| a == &**b);
    let key = path.map(str::to_owned);
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.iter().find(|e| same(e)).and_then(|e| e.docs.get(&key)) {
            return hit.clone();
        }
    }
    // Generated outside the cache lock; two concurrent misses both generate, harmlessly.
    let owned: Vec<ResourceType> = types.iter().map(|t| (**t).clone()).collect();
    let doc = match path {
        None => Some(index(&owned)),
        Some(p) => group_version(&owned, p),
    }
    .map(|v| Bytes::from(serde_json::to_vec(&v).unwrap_or_default()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let pos = match cache.iter().position(same) {
        Some(p) => p,
        None => {
            if cache.len() >= CACHED_TYPE_SETS {
                cache.remove(0);
            }
            cache.push(Entry {
                types: owned,
                docs: HashMap::new(),
            });
            cache.len() - 1
        }
    };
    cache[pos].docs.insert(key, doc.clone());
    doc
}

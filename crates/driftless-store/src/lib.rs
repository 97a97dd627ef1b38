//! driftless-store

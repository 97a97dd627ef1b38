//! driftless-source

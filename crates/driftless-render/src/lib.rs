//! driftless-render

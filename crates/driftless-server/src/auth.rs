//! Authentication middleware.

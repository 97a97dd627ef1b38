//! Webhook receiver (in progress).

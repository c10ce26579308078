//! Staying up when a dependency is not: circuit breakers, backoff with jitter, and the guarded
//! store (deadline + breaker + read retries around every store call).
//!
//! # Layout
//! - [`breaker`]: the circuit breaker state machine (sans-IO).
//! - [`backoff`]: exponential backoff with jitter.
//! - [`guarded_store`]: [`GuardedStore`](guarded_store::GuardedStore), used in every mode.

pub mod backoff;
pub mod breaker;
pub mod guarded_store;

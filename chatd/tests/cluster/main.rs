//! Cluster mode against real Redis servers: two (or more) in-process chatd nodes sharing one
//! Redis (standalone, or a 3-master Redis Cluster) and one store (a shared SQLite database in
//! place of MongoDB), and raw chat/1 clients over QUIC on loopback.
//!
//! Every test starts its own redis-server processes on free ports; a test that cannot start
//! redis-server fails and says so.

mod support;

mod cache;
mod fanout;
mod kick;
mod presence;
mod pubsub_kill;
mod ratelimit;
mod resilience;
mod steering;

//! Cluster mode against real servers: several chatd processes on FerretDB (MongoDB wire
//! protocol) and a Redis Cluster, the launchers they stand on, and the failures of each part.

mod cached_store;
mod chat;
mod database;
mod failover;
mod files;
mod launchers;
mod nodes;
mod redis_outage;

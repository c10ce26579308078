//! Cluster mode against real servers: several chatd processes on FerretDB (MongoDB wire
//! protocol) and a Redis Cluster, the launchers they stand on, and the failures of each part;
//! and (`in_process`) in-process nodes sharing one SQLite store on one Redis, for what only the
//! inside of a node shows.

mod access;
mod broadcast;
mod cached_store;
mod calls;
mod chat;
mod database;
mod delivery;
mod encryption;
mod failover;
mod ferret_postgres;
mod files;
mod in_process;
mod keys;
mod launchers;
mod master_key;
mod nodes;
mod recovery;
mod redis_outage;

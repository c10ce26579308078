//! The shipped binaries as an operator runs them: chatd processes, loadgen runs against them,
//! and the documented nginx QUIC load balancer in front of them.

mod cli;
mod daemon;
mod deploy;
mod loadgen_smoke;
mod nginx_quic;
mod quickstart;

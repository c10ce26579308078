//! The shipped binaries as an operator runs them: chatd processes, loadgen runs and chatctl
//! commands against them, the documented nginx QUIC load balancer in front of them, and
//! chat-tui driven in tmux.

mod big_file;
mod chat_tui;
mod chat_tui_calls;
mod chatctl;
mod chatctl_data;
mod chatctl_dlq;
mod chatctl_moderation;
mod chatctl_server;
mod chatctl_two_factor;
mod cli;
mod daemon;
mod deploy;
mod encryption;
mod loadgen_smoke;
mod nginx_quic;
mod quickstart;
mod reconnect_storm;

/// Held by the tests that open thousands of connections at once (the reconnect storm, the idle
/// memory budget): they take turns, so one's load does not make the other's clients time out,
/// and no measured figure includes the other's work.
pub(crate) async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

//! Real Redis servers for the suites: a single [`RedisServer`], and a [`RedisCluster`] of three
//! masters with one replica each.
//!
//! Every server runs `redis-server` on free loopback ports in its own temporary directory, with
//! persistence off, and is killed with its process group when dropped.
//!
//! # Layout
//! - this module: [`RedisServer`], starting one node and talking to it.
//! - `cluster`: [`RedisCluster`], joining six nodes and the failure helpers the cluster tests use.

mod cluster;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use cluster::{ClusterNode, MASTERS, RedisCluster};

use crate::ports::free_port;
use crate::process::{Launch, ServerProcess, poll_until};
use crate::tools;

/// How long a node may take to answer PING after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Connect and read timeout of one command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts with fresh ports when a port turned out to be taken.
const START_ATTEMPTS: usize = 3;

/// One running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
    // What started it, to start it again on the same port (boxed: it is big, and rarely used).
    launch: Box<Launch>,
    port: u16,
    // Dropped after `process` (fields drop in order), so the server is gone before its files.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a standalone server.
    ///
    /// # Panics
    /// When it cannot be started, with its command line and log tail.
    pub fn start() -> RedisServer {
        RedisServer::launch(false)
    }

    /// Starts a node with `cluster-enabled yes` that is not part of a cluster yet.
    pub(crate) fn start_cluster_node() -> RedisServer {
        RedisServer::launch(true)
    }

    fn launch(cluster: bool) -> RedisServer {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match RedisServer::try_launch(cluster) {
                Ok(server) => return server,
                Err(Launched {
                    failure,
                    port_taken: true,
                }) => last = failure,
                Err(Launched {
                    failure,
                    port_taken: false,
                }) => panic!("{failure}"),
            }
        }
        panic!("{last}\n(gave up after {START_ATTEMPTS} attempts with fresh ports)")
    }

    fn try_launch(cluster: bool) -> Result<RedisServer, Launched> {
        let dir = tempfile::Builder::new()
            .prefix("chat-redis-")
            .tempdir()
            .unwrap_or_else(|e| {
                panic!("cannot create a temporary directory for redis-server: {e}")
            });
        let port = free_port();
        let mut launch = Launch::new(
            "redis-server",
            tools::redis_server(),
            dir.path().join("redis.log"),
        )
        .cleanup_dir(dir.path())
        .current_dir(dir.path())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        // No persistence: the tests' data lives as long as the server.
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]);
        if cluster {
            launch = launch.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                // The bus port would be port + 10000, which nobody checked is free.
                "--cluster-port",
                &free_port().to_string(),
                // Failure detection in ~1.5 s keeps failover tests short.
                "--cluster-node-timeout",
                "1500",
                // Replicas sync at once instead of after the default 5 s batching delay.
                "--repl-diskless-sync-delay",
                "0",
            ]);
        }
        let mut server = RedisServer {
            process: launch.clone().spawn(),
            launch: Box::new(launch),
            port,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the process answers PING.
    fn wait_ready(&mut self) -> Result<(), Launched> {
        let ready = poll_until(START_TIMEOUT, Duration::from_millis(20), || {
            if !self.process.is_running() {
                return Some(false);
            }
            self.ping().then_some(true)
        });
        match ready {
            Some(true) => Ok(()),
            Some(false) => {
                let failure = self.process.failure("exited during start");
                Err(Launched {
                    port_taken: failure.contains("Address already in use"),
                    failure,
                })
            }
            None => Err(Launched {
                failure: self
                    .process
                    .failure(&format!("did not answer PING within {START_TIMEOUT:?}")),
                port_taken: false,
            }),
        }
    }

    /// Starts it again, killed or not, on the same port with the same settings. Its data is
    /// gone (no persistence): a Redis that restarted empty.
    ///
    /// # Panics
    /// When it does not come back, with its command line and log tail.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Launch::clone(&self.launch).spawn();
        if let Err(launched) = self.wait_ready() {
            panic!("{}", launched.failure);
        }
    }

    /// The port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process (signals, log).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Runs one command on a fresh connection, with bounded connect and read times.
    pub fn query<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> ::redis::RedisResult<T> {
        let client = ::redis::Client::open(self.url())?;
        let mut con = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        con.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        con.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        cmd.query(&mut con)
    }

    /// Whether it answers PING.
    pub fn ping(&self) -> bool {
        self.query::<String>(&::redis::cmd("PING"))
            .is_ok_and(|reply| reply == "PONG")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGKILLs it (and its process group).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Panics with a message naming this server, its command line and its log tail.
    pub fn fail(&self, what: &str) -> ! {
        self.process.fail(what)
    }
}

/// Why one start attempt failed.
struct Launched {
    failure: String,
    port_taken: bool,
}

//! A Redis Cluster of three masters with one replica each, and the failures the cluster tests
//! inflict on it: killing a master (its replica takes over) and cutting every pub/sub connection.

use std::process::Command;
use std::time::Duration;

use super::RedisServer;
use crate::process::{poll_until, run_bounded};
use crate::tools;

/// Masters of a test Redis Cluster; each has one replica.
pub const MASTERS: usize = 3;
/// How long joining the nodes may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the cluster may take to reach `cluster_state:ok` with every replica in sync.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a replica may take to replace a killed master.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Slots in a Redis Cluster.
const SLOTS: u32 = 16_384;

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node id.
    pub id: String,
    /// Its client port.
    pub port: u16,
    /// Flags: `myself`, `master`, `slave`, `fail`, `fail?`, `handshake`, `noaddr`, ...
    pub flags: Vec<String>,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// Whether the link to it is `connected`.
    pub connected: bool,
    /// Slots served (as printed: `0-5460`, `5461`, ...).
    pub slots: Vec<String>,
}

impl ClusterNode {
    /// Parses one line of `CLUSTER NODES`.
    pub fn parse(line: &str) -> Option<ClusterNode> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        // `ip:port@cport[,hostname]`
        let port = fields[1]
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        Some(ClusterNode {
            id: fields[0].to_string(),
            port,
            flags: fields[2].split(',').map(str::to_string).collect(),
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            connected: fields[7] == "connected",
            slots: fields[8..].iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Whether it has `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether `slot` is among the slots it serves (migrating and importing entries, `[...]`,
    /// are not served).
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|range| {
            let bounds = match range.split_once('-') {
                Some((start, end)) => start.parse::<u16>().ok().zip(end.parse::<u16>().ok()),
                None => range.parse::<u16>().ok().map(|s| (s, s)),
            };
            bounds.is_some_and(|(start, end)| (start..=end).contains(&slot))
        })
    }

    /// A master not marked as failing.
    pub fn is_healthy_master(&self) -> bool {
        self.has("master") && !self.has("fail") && !self.has("fail?")
    }
}

/// A running Redis Cluster (see the module documentation). Killed nodes stay in the list, dead.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes, joins them as three masters with one replica each, and waits until
    /// every node reports `cluster_state:ok` and every replica is in sync.
    ///
    /// # Panics
    /// When a node cannot be started or the cluster does not form in time.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..MASTERS * 2)
            .map(|_| RedisServer::start_cluster_node())
            .collect();
        let mut create = Command::new(tools::redis_cli());
        create.arg("--cluster").arg("create");
        create.args(nodes.iter().map(|n| n.addr().to_string()));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let shown = format!("{create:?}");
        let output = run_bounded(&mut create, CREATE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        if !output.status.success() || output.stdout.contains("[ERR]") {
            nodes[0].fail(&format!(
                "cannot create the cluster with {shown}: {}\n{}{}",
                output.status, output.stdout, output.stderr
            ));
        }
        let mut cluster = RedisCluster { nodes };
        cluster.wait_settled(SETTLE_TIMEOUT, MASTERS * 2);
        cluster
    }

    /// Every node (killed ones included).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Indices of the nodes still running.
    pub fn alive(&mut self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect()
    }

    /// `redis://127.0.0.1:port` of every node that has not been killed.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.ping())
            .map(RedisServer::url)
            .collect()
    }

    /// `CLUSTER NODES` as seen by node `i`.
    ///
    /// # Errors
    /// The Redis error when the node does not answer.
    pub fn view(&self, i: usize) -> ::redis::RedisResult<Vec<ClusterNode>> {
        let text: String = self.nodes[i].query(::redis::cmd("CLUSTER").arg("NODES"))?;
        Ok(text.lines().filter_map(ClusterNode::parse).collect())
    }

    /// `CLUSTER INFO` of node `i` as `key:value` pairs.
    ///
    /// # Errors
    /// The Redis error when the node does not answer.
    pub fn info(&self, i: usize) -> ::redis::RedisResult<Vec<(String, String)>> {
        let text: String = self.nodes[i].query(::redis::cmd("CLUSTER").arg("INFO"))?;
        Ok(text
            .lines()
            .filter_map(|l| {
                l.trim()
                    .split_once(':')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect())
    }

    /// Node indices of the masters (healthy, serving slots), as node `from` sees them, in
    /// index order.
    ///
    /// # Errors
    /// The Redis error when node `from` does not answer.
    pub fn masters(&self, from: usize) -> ::redis::RedisResult<Vec<usize>> {
        let view = self.view(from)?;
        Ok(self.indices(
            view.iter()
                .filter(|n| n.is_healthy_master() && !n.slots.is_empty()),
        ))
    }

    /// The slot of a key or channel, as the cluster computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// When no live node answers.
    pub fn slot_of(&self, name: &str) -> u16 {
        let mut last = None;
        for node in self.nodes.iter().filter(|n| n.ping()) {
            match node.query(::redis::cmd("CLUSTER").arg("KEYSLOT").arg(name)) {
                Ok(slot) => return slot,
                Err(e) => last = Some(e),
            }
        }
        panic!("no redis node computed the slot of {name:?}: {last:?}")
    }

    /// The index of the master serving `slot`, as node `from` sees it.
    ///
    /// # Panics
    /// When node `from` does not answer or no master serves the slot.
    pub fn master_of_slot(&self, from: usize, slot: u16) -> usize {
        let view = self
            .view(from)
            .unwrap_or_else(|e| self.nodes[from].fail(&format!("CLUSTER NODES: {e}")));
        let serving = view
            .iter()
            .filter(|n| n.is_healthy_master() && n.serves(slot));
        self.indices(serving)
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {view:?}"))
    }

    /// Node indices of the replicas (not failing), as node `from` sees them, in index order.
    ///
    /// # Errors
    /// The Redis error when node `from` does not answer.
    pub fn replicas(&self, from: usize) -> ::redis::RedisResult<Vec<usize>> {
        let view = self.view(from)?;
        Ok(self.indices(
            view.iter()
                .filter(|n| n.has("slave") && !n.has("fail") && !n.has("fail?")),
        ))
    }

    fn indices<'a>(&self, nodes: impl Iterator<Item = &'a ClusterNode>) -> Vec<usize> {
        let mut indices: Vec<usize> = nodes
            .filter_map(|n| self.nodes.iter().position(|s| s.port() == n.port))
            .collect();
        indices.sort_unstable();
        indices
    }

    /// Whether every live node agrees: `cluster_state:ok`, all slots assigned, `expected`
    /// healthy nodes, each seen as a master serving slots or a replica of one, and every live
    /// replica's link up.
    fn settled(&mut self, expected: usize) -> Result<(), String> {
        let alive = self.alive();
        if alive.len() != expected {
            return Err(format!(
                "{} nodes running, expected {expected}",
                alive.len()
            ));
        }
        for &i in &alive {
            let info = self
                .info(i)
                .map_err(|e| format!("node {i}: CLUSTER INFO: {e}"))?;
            let get = |key: &str| info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            if get("cluster_state") != Some("ok") {
                return Err(format!(
                    "node {i}: cluster_state {:?}",
                    get("cluster_state")
                ));
            }
            if get("cluster_slots_ok") != Some(&SLOTS.to_string()) {
                return Err(format!(
                    "node {i}: cluster_slots_ok {:?}",
                    get("cluster_slots_ok")
                ));
            }
            let view = self
                .view(i)
                .map_err(|e| format!("node {i}: CLUSTER NODES: {e}"))?;
            let healthy = view
                .iter()
                .filter(|n| !n.has("fail") && !n.has("fail?") && !n.has("handshake"))
                .count();
            if healthy != expected {
                return Err(format!(
                    "node {i} sees {healthy} healthy nodes, expected {expected}"
                ));
            }
            // Roles travel by gossip: every node must already see every healthy node as a
            // master serving slots or as a replica of one.
            let undecided = view.iter().find(|n| {
                let serving_master = n.has("master") && !n.slots.is_empty();
                let attached_replica = n.has("slave") && n.master_id.is_some();
                !n.has("fail") && !n.has("fail?") && !serving_master && !attached_replica
            });
            if let Some(node) = undecided {
                return Err(format!(
                    "node {i} does not see a role for port {} yet: {:?}",
                    node.port, node.flags
                ));
            }
            if view
                .iter()
                .any(|n| !n.has("myself") && !n.has("fail") && !n.connected)
            {
                return Err(format!("node {i} has a disconnected link"));
            }
            let me = view
                .iter()
                .find(|n| n.has("myself"))
                .ok_or(format!("node {i}: no myself line"))?;
            if me.has("slave") {
                let replication: String = self.nodes[i]
                    .query(::redis::cmd("INFO").arg("replication"))
                    .map_err(|e| format!("node {i}: INFO replication: {e}"))?;
                if !replication
                    .lines()
                    .any(|l| l.trim() == "master_link_status:up")
                {
                    return Err(format!("node {i}: replica link not up"));
                }
            }
        }
        Ok(())
    }

    fn wait_settled(&mut self, timeout: Duration, expected: usize) {
        let mut last = String::new();
        let settled = poll_until(timeout, Duration::from_millis(100), || {
            match self.settled(expected) {
                Ok(()) => Some(()),
                Err(e) => {
                    last = e;
                    None
                }
            }
        });
        if settled.is_none() {
            let first = self.alive().first().copied().unwrap_or(0);
            self.nodes[first].fail(&format!(
                "the cluster did not settle within {timeout:?}: {last}"
            ));
        }
    }

    /// SIGKILLs the `i`-th master (in node order), waits until its replica has been promoted and
    /// every remaining node reports `cluster_state:ok`, and returns the killed node's index.
    ///
    /// # Panics
    /// When there is no `i`-th master, it has no live replica, or the failover does not finish
    /// in time.
    pub fn kill_master(&mut self, i: usize) -> usize {
        let from = self
            .alive()
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no redis node is running"));
        let view = self
            .view(from)
            .unwrap_or_else(|e| self.nodes[from].fail(&format!("CLUSTER NODES: {e}")));
        let masters = self
            .masters(from)
            .unwrap_or_else(|e| self.nodes[from].fail(&format!("CLUSTER NODES: {e}")));
        let victim = *masters
            .get(i)
            .unwrap_or_else(|| panic!("no master {i}: the masters are nodes {masters:?}"));
        let victim_id = view
            .iter()
            .find(|n| n.port == self.nodes[victim].port())
            .map(|n| n.id.clone())
            .unwrap_or_else(|| panic!("node {victim} is missing from CLUSTER NODES"));
        let heirs = self.indices(
            view.iter()
                .filter(|n| n.master_id.as_deref() == Some(victim_id.as_str()) && !n.has("fail")),
        );
        assert!(
            !heirs.is_empty(),
            "master node {victim} has no replica to take over"
        );
        let expected = self.alive().len() - 1;
        self.nodes[victim].kill();
        let promoted = poll_until(FAILOVER_TIMEOUT, Duration::from_millis(100), || {
            heirs.iter().copied().find(|&h| {
                self.nodes[h]
                    .query::<Vec<::redis::Value>>(&::redis::cmd("ROLE"))
                    .ok()
                    .and_then(|role| role.into_iter().next())
                    .is_some_and(
                        |role| matches!(role, ::redis::Value::BulkString(b) if b == b"master"),
                    )
            })
        });
        if promoted.is_none() {
            self.nodes[heirs[0]].fail(&format!(
                "no replica of killed master node {victim} was promoted within {FAILOVER_TIMEOUT:?}"
            ));
        }
        self.wait_settled(FAILOVER_TIMEOUT, expected);
        victim
    }

    /// `CLIENT KILL TYPE pubsub` on every live node: drops every pub/sub connection (sharded
    /// ones included). Returns how many connections were killed.
    ///
    /// # Panics
    /// When a live node refuses the command.
    pub fn client_kill_pubsub_all(&mut self) -> u64 {
        let mut killed = 0;
        for i in self.alive() {
            let node = &self.nodes[i];
            let n: u64 = node
                .query(::redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
                .unwrap_or_else(|e| node.fail(&format!("CLIENT KILL TYPE pubsub: {e}")));
            killed += n;
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterNode;

    #[test]
    fn parses_cluster_nodes_lines() {
        let master = ClusterNode::parse(
            "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host.example myself,master - 0 1426238317239 4 connected 0-5460 5462",
        )
        .expect("master line");
        assert_eq!(master.port, 30004);
        assert!(master.has("myself") && master.is_healthy_master());
        assert_eq!(master.master_id, None);
        assert_eq!(master.slots, ["0-5460", "5462"]);
        for (slot, served) in [
            (0, true),
            (5460, true),
            (5461, false),
            (5462, true),
            (5463, false),
        ] {
            assert_eq!(master.serves(slot), served, "slot {slot}");
        }

        let replica = ClusterNode::parse(
            "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 slave,fail e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238316232 2 disconnected",
        )
        .expect("replica line");
        assert_eq!(
            replica.master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert!(!replica.connected && replica.has("fail") && !replica.is_healthy_master());
        assert!(ClusterNode::parse("garbage").is_none());
    }
}

//! Redis Cluster key slots and the slot map, for routing sharded pub/sub ourselves.
//!
//! A key (or shard channel) belongs to slot `CRC16(key) mod 16384`, where only the part inside
//! the first non-empty `{...}` counts when there is one (hash tags). The slot map comes from
//! `CLUSTER SLOTS`: ranges of slots and the master that serves each.

use redis::Value;

/// Number of slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16_384;

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses it.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The part of `key` that is hashed: the content of the first `{...}` when it is not empty.
fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(rest) = key.get(open + 1..)
        && let Some(len) = rest.iter().position(|&b| b == b'}')
        && len > 0
        && let Some(tag) = rest.get(..len)
    {
        return tag;
    }
    key
}

/// The slot of a key or shard channel.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOT_COUNT
}

/// One range of slots and the master serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub start: u16,
    /// Last slot (inclusive).
    pub end: u16,
    /// The master's `host:port`.
    pub master: String,
}

/// Which master serves which slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMap {
    ranges: Vec<SlotRange>,
}

/// A `CLUSTER SLOTS` reply that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected CLUSTER SLOTS reply: {0}")]
pub struct SlotMapError(String);

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

impl SlotMap {
    /// Parses a `CLUSTER SLOTS` reply. `fallback_host` replaces an empty or `?` host (a node that
    /// does not know its own address answers that way).
    pub fn from_cluster_slots(reply: &Value, fallback_host: &str) -> Result<SlotMap, SlotMapError> {
        let Value::Array(entries) = reply else {
            return Err(SlotMapError("not an array".into()));
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(fields) = entry else {
                return Err(SlotMapError("a range is not an array".into()));
            };
            let (Some(start), Some(end), Some(Value::Array(node))) = (
                fields.first().and_then(int),
                fields.get(1).and_then(int),
                fields.get(2),
            ) else {
                return Err(SlotMapError("a range lacks start, end or master".into()));
            };
            let (Some(host), Some(port)) = (node.first().and_then(text), node.get(1).and_then(int))
            else {
                return Err(SlotMapError("a master lacks host or port".into()));
            };
            let in_range = |n: i64| u16::try_from(n).ok().filter(|s| *s < SLOT_COUNT);
            let (Some(start), Some(end), Ok(port)) =
                (in_range(start), in_range(end), u16::try_from(port))
            else {
                return Err(SlotMapError(format!(
                    "slot range {start}-{end} or port {port} out of range"
                )));
            };
            let host = if host.is_empty() || host == "?" {
                fallback_host.to_owned()
            } else {
                host
            };
            let master = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            ranges.push(SlotRange { start, end, master });
        }
        ranges.sort_by_key(|r| r.start);
        Ok(SlotMap { ranges })
    }

    /// The master serving `slot`, when the map covers it.
    pub fn master_of(&self, slot: u16) -> Option<&str> {
        let i = self.ranges.partition_point(|r| r.end < slot);
        self.ranges
            .get(i)
            .filter(|r| r.start <= slot)
            .map(|r| r.master.as_str())
    }

    /// Every master, each once.
    pub fn masters(&self) -> Vec<String> {
        let mut masters: Vec<String> = self.ranges.iter().map(|r| r.master.clone()).collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// True when no slot is mapped.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag does not count: the whole key is hashed.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOT_COUNT);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn slot_map_from_cluster_slots() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.9", 7009),
            ]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node("", 7002)]),
        ]);
        let map = SlotMap::from_cluster_slots(&reply, "seed").expect("parse");
        assert_eq!(map.master_of(0), Some("10.0.0.1:7000"));
        assert_eq!(map.master_of(5461), Some("10.0.0.2:7001"));
        assert_eq!(map.master_of(16383), Some("seed:7002"));
        assert_eq!(
            map.masters(),
            ["10.0.0.1:7000", "10.0.0.2:7001", "seed:7002"]
        );
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(10),
            Value::Int(20),
            node("h", 1),
        ])]);
        let map = SlotMap::from_cluster_slots(&partial, "x").expect("parse");
        assert_eq!(map.master_of(9), None);
        assert_eq!(map.master_of(21), None);
        assert!(SlotMap::from_cluster_slots(&Value::Nil, "x").is_err());
        let bad = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(99_999),
            node("h", 1),
        ])]);
        assert!(SlotMap::from_cluster_slots(&bad, "x").is_err());
    }
}

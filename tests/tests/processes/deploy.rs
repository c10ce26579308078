//! The deployment files of deploy/ kept working: the systemd unit passes `systemd-analyze
//! verify` and carries its hardening; the compose file describes the topology `cargo xtask
//! cluster` runs natively, with real chatd settings. (The Containerfile is built by
//! `cargo xtask image`, which `cargo xtask test` runs after the tests.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory as _;
use serde_yaml_ng::Value;
use tests::cluster::{ClusterSpec, RedisKind};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = read("deploy/systemd/chatd.service");
    for line in [
        "DynamicUser=yes",
        "User=chatd",
        "ProtectSystem=strict",
        "StateDirectory=chatd",
        "ConfigurationDirectory=chatd",
        "Restart=on-failure",
        "LimitNOFILE=65536",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line} missing from the unit"
        );
    }
    // verify checks that ExecStart's binary exists: point it at the one the tests built.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chatd.service");
    let chatd = tests::tools::chatd_binary();
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/chatd", &chatd.display().to_string()),
    )
    .expect("write unit");
    let out = Command::new(tests::tools::systemd_analyze())
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on values it ignores: any message is a failure.
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

fn services(compose: &Value) -> BTreeMap<String, &Value> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_owned(), v))
        .collect()
}

fn env<'a>(service: &'a Value, key: &str) -> &'a str {
    service["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn the_compose_file_runs_the_topology_of_xtask_cluster() {
    let text = read("deploy/compose/compose.yaml");
    let mut compose: Value = serde_yaml_ng::from_str(&text).expect("compose.yaml parses");
    compose.apply_merge().expect("merge keys");
    let services = services(&compose);
    let named = |prefix: &str| -> Vec<String> {
        services
            .keys()
            .filter(|k| {
                k.strip_prefix(prefix)
                    .and_then(|n| n.strip_prefix('-'))
                    .is_some_and(|n| n.parse::<usize>().is_ok())
            })
            .cloned()
            .collect()
    };
    let native = ClusterSpec::default();
    let chatds = named("chatd");
    assert_eq!(chatds.len(), native.nodes, "chatd nodes: {chatds:?}");
    assert_eq!(
        native.redis,
        RedisKind::Cluster,
        "xtask cluster runs in cluster mode"
    );
    let redis = named("redis");
    assert_eq!(redis.len(), tests::redis::MASTERS * 2, "{redis:?}");
    let mongos = named("mongo");
    assert_eq!(mongos.len(), 3, "a replica set of three");
    for other in ["nginx", "coturn", "mongo-init", "redis-init"] {
        assert!(services.contains_key(other), "{other} missing");
    }
    // Every name a service depends on exists.
    for (name, service) in &services {
        for dep in service["depends_on"].as_sequence().into_iter().flatten() {
            let dep = dep.as_str().expect("dependency name");
            assert!(
                services.contains_key(dep),
                "{name} depends on unknown {dep}"
            );
        }
    }

    // The chatd nodes: real settings, the image xtask builds, one shared identity, node ids
    // like the native cluster's.
    let settings: BTreeSet<String> = chatd::ops::config::Cli::command()
        .find_subcommand("serve")
        .expect("serve")
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let mut public = BTreeSet::new();
    for (i, name) in chatds.iter().enumerate() {
        let node = services[name];
        assert_eq!(
            node["image"].as_str(),
            Some("localhost/chatd:latest"),
            "{name}"
        );
        for key in node["environment"]
            .as_mapping()
            .expect("environment")
            .keys()
        {
            let key = key.as_str().expect("variable");
            assert!(
                settings.contains(key),
                "{name}: {key} is not a chatd setting"
            );
        }
        assert_eq!(env(node, "CHATD_NODE_ID"), format!("node{i}"));
        let mongo = env(node, "CHATD_MONGO_URI");
        assert!(mongo.contains("replicaSet=rs0"), "{mongo}");
        for m in &mongos {
            assert!(mongo.contains(&format!("{m}:27017")), "{mongo} lacks {m}");
        }
        let redis_url = env(node, "CHATD_REDIS_URL");
        assert!(redis_url.starts_with("redis+cluster://"), "{redis_url}");
        chatd::ops::config::RedisUrl::parse(redis_url).expect("a valid --redis-url");
        let secrets: Vec<&str> = node["secrets"]
            .as_sequence()
            .expect("secrets")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(secrets, ["tls_cert", "tls_key", "token_key"], "{name}");
        assert!(public.insert(env(node, "CHATD_PUBLIC_ADDR").to_owned()));
    }
    let create = services["redis-init"]["command"][2]
        .as_str()
        .expect("redis-init script");
    assert!(create.contains("--cluster-replicas 1"), "{create}");
    for r in &redis {
        assert!(create.contains(&format!("{r}:6379")), "{create} lacks {r}");
    }

    // nginx balances over exactly the chatd services, like deploy/nginx/chat-quic.conf.
    let nginx = read("deploy/compose/nginx.conf");
    let upstream: Vec<&str> = nginx
        .lines()
        .filter(|l| l.trim_end().ends_with(';'))
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: Vec<String> = chatds.iter().map(|c| format!("{c}:4433")).collect();
    assert_eq!(upstream, expected);
    assert!(nginx.contains("hash $remote_addr consistent;"));
    assert!(read("deploy/nginx/chat-quic.conf").contains("hash $remote_addr consistent;"));
}

#[test]
fn the_containerfile_is_multi_stage_and_unprivileged() {
    let file = read("deploy/container/Containerfile");
    let stages = file.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage: {stages} stages");
    let user = file
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(file.contains("ENTRYPOINT [\"/usr/local/bin/chatd\"]"));
}

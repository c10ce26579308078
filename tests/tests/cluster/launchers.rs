//! The launchers the cluster suites stand on, each against its real server: a Redis Cluster
//! forms with three masters and three replicas and survives a killed master; pub/sub
//! connections can be cut; FerretDB stops and starts again on the same port, and stores in a
//! private PostgreSQL (the benchmark setup); chatd serves its
//! admin endpoints and drains on SIGTERM; nothing outlives its launcher, not even when the test
//! process dies without running destructors.

use std::process::Command;
use std::time::Duration;

use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::ferretdb::FerretDb;
use tests::process::{group_members, poll_until, tree_members};
use tests::redis::{RedisCluster, RedisServer};

/// Gives a process that was just killed a moment to disappear from `/proc`.
fn gone(pgid: u32) -> bool {
    poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        group_members(pgid).is_empty().then_some(())
    })
    .is_some()
}

#[test]
fn redis_server_serves_and_leaves_nothing_behind() {
    let server = RedisServer::start();
    let set: String = server
        .query(redis::cmd("SET").arg("greeting").arg("hello"))
        .expect("SET");
    assert_eq!(set, "OK");
    let got: String = server
        .query(redis::cmd("GET").arg("greeting"))
        .expect("GET");
    assert_eq!(got, "hello");
    let other = RedisServer::start();
    assert_ne!(server.port(), other.port());
    let pid = other.pid();
    drop(other);
    assert!(gone(pid), "redis-server {pid} survived its launcher");
    assert!(server.ping(), "dropping one server must not touch another");
}

#[test]
fn redis_cluster_forms_fails_over_and_cuts_pubsub() {
    let mut cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.urls().len(), 6);
    let masters = cluster.masters(0).expect("masters");
    let replicas = cluster.replicas(0).expect("replicas");
    assert_eq!(masters.len(), 3, "masters: {masters:?}");
    assert_eq!(replicas.len(), 3, "replicas: {replicas:?}");

    // Keys in every shard are served through redirections from any node.
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("key{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET");
    }

    // A subscriber on every node, then cut them all.
    let mut subscribers: Vec<redis::Connection> = cluster
        .nodes()
        .iter()
        .map(|node| {
            let con = redis::Client::open(node.url())
                .expect("client")
                .get_connection()
                .expect("connect");
            con.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            con
        })
        .collect();
    // A `PubSub` unsubscribes when dropped: keep them all.
    let mut pubsubs: Vec<redis::PubSub<'_>> = subscribers
        .iter_mut()
        .map(|con| {
            let mut pubsub = con.as_pubsub();
            pubsub.subscribe("news").expect("SUBSCRIBE");
            pubsub
        })
        .collect();
    assert_eq!(cluster.client_kill_pubsub_all(), 6);
    for pubsub in &mut pubsubs {
        assert!(
            pubsub.get_message().is_err(),
            "a killed subscriber still receives"
        );
    }
    assert_eq!(cluster.client_kill_pubsub_all(), 0, "nothing left to kill");

    let victim = cluster.kill_master(1);
    assert_eq!(victim, masters[1]);
    let survivor = cluster.alive()[0];
    let masters_after = cluster.masters(survivor).expect("masters");
    assert_eq!(
        masters_after.len(),
        3,
        "a replica took over: {masters_after:?}"
    );
    assert!(!masters_after.contains(&victim));
    assert_eq!(cluster.replicas(survivor).expect("replicas").len(), 2);
    assert_eq!(cluster.urls().len(), 5);

    // Every shard, the lost one included, serves reads and writes again. (Keys written before
    // the failover are not checked: Redis replicates asynchronously and a promoted replica may
    // miss the last writes, which is why chatd never keeps data only in Redis.)
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("after{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET after the failover");
        let value: i64 = redis::cmd("GET")
            .arg(format!("after{i}"))
            .query(&mut con)
            .expect("GET after the failover");
        assert_eq!(value, i);
    }
}

#[test]
fn ferretdb_stops_and_starts_again_on_the_same_port() {
    let mut db = FerretDb::start();
    let addr = db.addr();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    db.stop();
    assert!(!db.is_running());
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "stopped but still accepting"
    );
    db.restart();
    assert!(db.is_running());
    assert_eq!(db.addr(), addr);
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(db.uri_for("x").starts_with(&format!("mongodb://{addr}/x")));
    assert_ne!(FerretDb::fresh_database("t"), FerretDb::fresh_database("t"));
}

#[tokio::test]
async fn ferretdb_stores_in_a_private_postgres() {
    use chatd::testing::UserStore as _;
    use chatd::testing::{MongoOptions, MongoStore};
    let (pg, db) = tokio::task::spawn_blocking(FerretDb::start_on_postgres)
        .await
        .expect("start PostgreSQL and FerretDB on it");
    let store = MongoStore::connect(&db.uri_for("launcher"), MongoOptions::default())
        .await
        .expect("connect");
    let user = store
        .create_user(chatd::testing::NewUser {
            username: "pg".into(),
            email: "pg@example.test".into(),
            password_hash: "$argon2id$x".into(),
            role: chatproto::pb::Role::User,
            now_ms: 1,
        })
        .await
        .expect("create");
    let read = store.user(user.id).await.expect("read").expect("exists");
    assert_eq!(read.username, "pg");
    // Its backends (FerretDB's connections) each start a session of their own: only the tree
    // finds them, and chat-bench counts PostgreSQL's CPU over it.
    let postmaster = pg.pid().expect("postgres runs");
    let group = group_members(postmaster);
    let tree = tree_members(postmaster);
    assert!(
        tree.len() > group.len() && group.iter().all(|p| tree.contains(p)),
        "group {group:?}, tree {tree:?}"
    );
    // The rows are in PostgreSQL: stopping it makes the store unavailable.
    drop(db);
    drop(pg);
}

#[test]
fn chatd_process_serves_admin_endpoints_and_drains_on_sigterm() {
    let mut chatd = ChatdProcess::start(ChatdConfig::new());
    let fingerprint = chatd.fingerprint().to_string();
    assert!(
        fingerprint.len() >= 64
            && fingerprint
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':'),
        "{fingerprint}"
    );
    let (status, _) = chatd.admin_get("/healthz").expect("healthz");
    assert_eq!(status, 200);
    let (status, _) = chatd.admin_get("/readyz").expect("readyz");
    assert_eq!(status, 200);
    let (status, metrics) = chatd.admin_get("/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE"), "not Prometheus text: {metrics}");
    let (status, _) = chatd.admin_get("/no-such-page").expect("404");
    assert_eq!(status, 404);

    chatd.sigterm();
    let status = chatd.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must drain and exit 0: {status}"
    );

    // Same data directory and port: same certificate.
    let addr = chatd.addr();
    chatd.restart();
    assert_eq!(chatd.addr(), addr);
    assert_eq!(chatd.fingerprint(), fingerprint);
    let pid = chatd.process().pid();
    let status = chatd.sigkill();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(gone(pid));
}

/// Run only by [`watchdog_stops_servers_of_a_test_process_that_died`]: starts a server, prints
/// its pid and aborts, so that no destructor runs.
#[test]
#[ignore = "helper: run as a child process by watchdog_stops_servers_of_a_test_process_that_died"]
fn watchdog_child() {
    assert!(
        std::env::var_os("CHAT_TEST_WATCHDOG_CHILD").is_some(),
        "only run by watchdog_stops_servers_of_a_test_process_that_died"
    );
    let server = RedisServer::start();
    println!("redis pid {} dir {}", server.pid(), server.dir().display());
    std::process::abort();
}

#[test]
fn watchdog_stops_servers_of_a_test_process_that_died() {
    // Test names are module paths without the crate: `launchers::watchdog_child`.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let output = Command::new(std::env::current_exe().expect("test executable"))
        .args([
            "--exact",
            &format!("{module}::watchdog_child"),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CHAT_TEST_WATCHDOG_CHILD", "1")
        .output()
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "the child must have aborted: {stdout}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("redis pid ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no pid line in {stdout}"));
    let (pid, dir) = line.split_once(" dir ").expect("pid and dir");
    let pid: u32 = pid.parse().expect("pid");
    assert!(
        gone(pid),
        "redis-server {pid} outlived its aborted test process"
    );
    assert!(
        poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            (!std::path::Path::new(dir).exists()).then_some(())
        })
        .is_some(),
        "{dir} was not removed"
    );
}

use std::time::Duration;

use clap::Parser as _;

use super::*;

fn args(list: &[&str]) -> RunArgs {
    let mut argv = vec!["loadgen", "run"];
    argv.extend_from_slice(list);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Some(Command::Run(a)),
            ..
        }) => *a,
        Ok(other) => panic!("not a run command line: {other:?}"),
        Err(e) => panic!("{e}"),
    }
}

fn load(list: &[&str]) -> Result<RunConfig, LoadgenError> {
    RunConfig::load(args(list))
}

fn invalid_setting(result: Result<RunConfig, LoadgenError>) -> &'static str {
    match result {
        Err(LoadgenError::Invalid { setting, .. }) => setting,
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

const PIN: &str = "3fa1000000000000000000000000000000000000000000000000000000000009";

#[test]
fn defaults_apply_to_a_minimal_command_line() {
    let c = load(&["--server", "127.0.0.1:4433", "--insecure"]).expect("valid");
    assert_eq!(c.servers, ["127.0.0.1:4433"]);
    assert_eq!(c.tls, Verification::InsecureDangerous);
    assert_eq!(c.scenario, Scenario::RoomFanout);
    assert_eq!((c.users, c.room_size, c.connections_per_user), (100, 10, 1));
    assert_eq!(c.rate, 100.0);
    assert_eq!(c.duration, Duration::from_secs(30));
    assert_eq!(c.warmup, Duration::from_secs(5));
    assert_eq!(c.payload, MIN_PAYLOAD);
    assert_eq!(c.username(42), "lg_000042");
    assert!(!c.json);
    assert!(c.zero_rtt, "0-RTT like the SDK");
}

#[test]
fn every_flag_is_read() {
    let c = load(&[
        "--server",
        "a:1",
        "--server",
        "[::1]:2",
        "--pin",
        PIN,
        "--scenario",
        "private",
        "--users",
        "20",
        "--connections-per-user",
        "3",
        "--rate",
        "1500.5",
        "--duration",
        "2m",
        "--warmup",
        "500ms",
        "--drain",
        "1.5s",
        "--payload",
        "256",
        "--connect-rate",
        "40",
        "--user-prefix",
        "bench.",
        "--password",
        "hunter2hunter2",
        "--request-timeout",
        "3s",
        "--metrics-url",
        "http://127.0.0.1:9464/metrics",
        "--plot",
        "/tmp/p",
        "--json",
        "--threads",
        "3",
        "--no-zero-rtt",
        "--server-name",
        "chat.example",
    ])
    .expect("valid");
    assert_eq!(c.servers, ["a:1", "[::1]:2"]);
    assert_eq!(c.scenario, Scenario::Private);
    assert_eq!(c.room_size, 2, "private chats have two members");
    assert_eq!(c.connections(), 60);
    assert_eq!(c.rate, 1500.5);
    assert_eq!(c.duration, Duration::from_secs(120));
    assert_eq!(c.warmup, Duration::from_millis(500));
    assert_eq!(c.drain, Duration::from_millis(1500));
    assert_eq!(c.payload, 256);
    assert_eq!(c.connect_rate, 40.0);
    assert_eq!(c.username(7), "bench.000007");
    assert_eq!(c.password, "hunter2hunter2");
    assert_eq!(c.request_timeout, Duration::from_secs(3));
    assert_eq!(c.metrics_urls.len(), 1);
    assert_eq!(c.plot_dir.as_deref(), Some(std::path::Path::new("/tmp/p")));
    assert!(c.json);
    assert_eq!(c.threads, 3);
    assert!(!c.zero_rtt);
    assert_eq!(c.server_name.as_deref(), Some("chat.example"));
    match c.tls {
        Verification::Pin(pin) => assert_eq!((pin[0], pin[1], pin[31]), (0x3f, 0xa1, 0x09)),
        other => panic!("{other:?}"),
    }
    assert!(
        !format!("{c:?}").contains("hunter2"),
        "the password stays out of Debug"
    );
}

#[test]
fn the_file_fills_what_flags_leave_out() {
    let text = r#"
server = ["n1:4433", "n2:4433"]
insecure = true
scenario = "search"
users = 1000
room_size = 100
rate = 2000
duration = "10s"
read_percent = 30
metrics_url = "http://127.0.0.1:9464"
json = true
"#;
    let c = RunConfig::load_with_file_text(args(&["--users", "500"]), text).expect("valid");
    assert_eq!(c.servers, ["n1:4433", "n2:4433"]);
    assert_eq!(c.scenario, Scenario::Search);
    assert_eq!(c.users, 500, "the flag wins");
    assert_eq!(c.room_size, 100);
    assert_eq!(c.rate, 2000.0, "integers are accepted as rates");
    assert_eq!(c.duration, Duration::from_secs(10));
    assert_eq!(c.read_percent, 30);
    assert_eq!(c.metrics_urls, ["http://127.0.0.1:9464"]);
    assert!(c.json);
    // Flags replace the file's server list rather than adding to it.
    let c = RunConfig::load_with_file_text(args(&["--server", "x:1"]), text).expect("valid");
    assert_eq!(c.servers, ["x:1"]);
}

#[test]
fn file_errors_name_the_key_and_line() {
    for (text, needle) in [
        ("usres = 10\n", "usres"),
        ("\n\nrate = \"fast\"\n", "3:8"),
        ("not toml at all", "1:5"),
    ] {
        match RunConfig::load_with_file_text(RunArgs::default(), text) {
            Err(LoadgenError::ConfigFile { message, .. }) => {
                assert!(message.contains(needle), "{text:?}: {message}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let missing = RunArgs {
        config: Some("/nonexistent/loadgen.toml".into()),
        ..RunArgs::default()
    };
    assert!(matches!(
        RunConfig::load(missing),
        Err(LoadgenError::ReadConfig { .. })
    ));
}

#[test]
fn bad_values_name_their_setting() {
    let base = ["--server", "h:1", "--insecure"];
    let cases: &[(&[&str], &str)] = &[
        (&["--users", "0"], "users"),
        (&["--users", "1"], "users"),
        (&["--users", "1000000"], "users"),
        (&["--users", "10", "--room-size", "3"], "room-size"),
        (&["--users", "10", "--room-size", "1"], "room-size"),
        (&["--scenario", "private", "--users", "7"], "users"),
        (&["--scenario", "bogus"], "scenario"),
        (&["--rate", "0"], "rate"),
        (&["--rate", "NaN"], "rate"),
        (&["--rate", "1000000", "--duration", "1h"], "rate"),
        (&["--duration", "0s"], "duration"),
        (&["--duration", "10"], "duration"),
        (&["--warmup", "5 parsecs"], "warmup"),
        (&["--payload", "99"], "payload"),
        (&["--payload", "4097"], "payload"),
        (&["--connect-rate=-1"], "connect-rate"),
        (&["--read-percent", "101"], "read-percent"),
        (&["--user-prefix", "Caps"], "user-prefix"),
        (
            &["--user-prefix", "a-very-long-prefix-for-names"],
            "user-prefix",
        ),
        (&["--password", "short"], "password"),
        (&["--request-timeout", "0ms"], "request-timeout"),
        (&["--metrics-url", "https://h:1/metrics"], "metrics-url"),
        (&["--connections-per-user", "0"], "connections-per-user"),
        (&["--threads", "0"], "threads"),
    ];
    for (extra, setting) in cases {
        let mut list = base.to_vec();
        list.extend_from_slice(extra);
        assert_eq!(invalid_setting(load(&list)), *setting, "{extra:?}");
    }
    assert_eq!(invalid_setting(load(&["--insecure"])), "server");
    assert_eq!(
        invalid_setting(load(&["--server", "nohost", "--insecure"])),
        "server"
    );
    assert_eq!(
        invalid_setting(load(&["--server", "h:99999", "--insecure"])),
        "server"
    );
    assert_eq!(invalid_setting(load(&["--server", "h:1"])), "pin");
    assert_eq!(
        invalid_setting(load(&["--server", "h:1", "--pin", "abcd"])),
        "pin"
    );
    // The flags exclude each other already on the command line.
    let argv = [
        "loadgen",
        "run",
        "--server",
        "h:1",
        "--pin",
        PIN,
        "--insecure",
    ];
    assert!(Cli::try_parse_from(argv).is_err());
}

#[test]
fn connect_scenarios_accept_any_user_count() {
    let c = load(&[
        "--server",
        "h:1",
        "--insecure",
        "--scenario",
        "idle",
        "--users",
        "7",
    ])
    .expect("idle needs no rooms");
    assert_eq!(c.scenario, Scenario::Idle);
    let c = load(&[
        "--server",
        "h:1",
        "--insecure",
        "--scenario",
        "connect-storm",
        "--users",
        "1",
    ])
    .expect("a storm of one");
    assert_eq!(c.users, 1);
}

#[test]
fn pins_are_accepted_with_colons() {
    let colons: Vec<String> = PIN
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let a = load(&["--server", "h:1", "--pin", &colons.join(":")]).expect("colons");
    let b = load(&["--server", "h:1", "--pin", PIN]).expect("plain");
    assert_eq!(a.tls, b.tls);
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("5").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("5y").is_err());
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
    assert!(parse_duration("1000h").is_err());
}

#[test]
fn help_documents_the_chatd_limits() {
    let err = Cli::try_parse_from(["loadgen", "run", "--help"]).expect_err("help");
    let help = err.render().to_string();
    for needle in [
        "--limit-send",
        "--limit-request",
        "--limit-address-request",
        "--limit-login-address",
        "CHATD_LIMIT_SEND",
        "[limits]",
        "--connect-rate",
        "--metrics-url",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn library_callers_pass_flags() {
    let c = RunConfig::from_flags([
        "--server",
        "h:1",
        "--insecure",
        "--users",
        "4",
        "--room-size",
        "2",
    ])
    .expect("valid");
    assert_eq!((c.users, c.room_size), (4, 2));
    assert!(matches!(
        RunConfig::from_flags(["--bogus"]),
        Err(LoadgenError::Usage(_))
    ));
    assert_eq!(
        invalid_setting(RunConfig::from_flags([
            "--server",
            "h:1",
            "--insecure",
            "--users",
            "0"
        ])),
        "users"
    );
}

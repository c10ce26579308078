use std::collections::HashMap;
use std::path::Path;

use super::*;

fn load_with(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = std::iter::once("chatd")
        .chain(args.iter().copied())
        .map(OsString::from);
    Config::load(args, move |k| env.get(k).cloned())
}

fn load_ok(args: &[&str], env: &[(&str, &str)]) -> Config {
    match load_with(args, env) {
        Ok(c) => c,
        Err(e) => panic!("load {args:?} {env:?}: {e}"),
    }
}

fn write_file(dir: &Path, text: &str) -> String {
    let path = dir.join("chatd.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

#[test]
fn defaults() {
    let c = load_ok(&[], &[]);
    assert_eq!(c.command, CliCommand::Serve);
    assert_eq!(c.config_file, None);
    assert_eq!(c.data_dir, PathBuf::from("./chatd-data"));
    assert_eq!(c.listen, "127.0.0.1:4433".parse().expect("addr"));
    assert_eq!(c.admin_listen, "127.0.0.1:9464".parse().expect("addr"));
    assert_eq!(c.tls, None);
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.log_filter, "info");
    assert_eq!(c.max_connections, 20_000);
    assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.token_key_file, PathBuf::from("./chatd-data/token.key"));
    assert_eq!(c.token_key, None);
    assert_eq!(c.limits, LimitRates::default());
    assert_eq!(c.mongo_uri, None);
    assert_eq!(c.redis_url, None);
    assert!(!c.steering);
    assert_eq!(c.public_addr, None);
    assert_eq!(c.presence_ttl, Duration::from_secs(15));
    assert_eq!(c.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(c.store_timeout, Duration::from_millis(1500));
    assert_eq!(c.node_id.len(), 16);
    assert_ne!(
        c.node_id,
        load_ok(&[], &[]).node_id,
        "node id is random per start"
    );
}

/// One setting present in every layer, and how to read it back.
struct Layered {
    flag: &'static str,
    env: &'static str,
    file: &'static str,
    values: [&'static str; 3],
    toml: fn(&str) -> String,
    get: fn(&Config) -> String,
}

fn plain(key: &'static str) -> impl Fn(&str) -> String {
    move |v| format!("{key} = \"{v}\"\n")
}

#[test]
fn flag_beats_env_beats_file_beats_default_for_every_setting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: Vec<Layered> = vec![
        Layered {
            flag: "--data-dir",
            env: "CHATD_DATA_DIR",
            file: "data_dir",
            values: ["/file", "/env", "/flag"],
            toml: |v| plain("data_dir")(v),
            get: |c| c.data_dir.display().to_string(),
        },
        Layered {
            flag: "--listen",
            env: "CHATD_LISTEN",
            file: "listen",
            values: ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"],
            toml: |v| plain("listen")(v),
            get: |c| c.listen.to_string(),
        },
        Layered {
            flag: "--admin-listen",
            env: "CHATD_ADMIN_LISTEN",
            file: "admin_listen",
            values: ["127.0.0.1:11", "127.0.0.1:12", "127.0.0.1:13"],
            toml: |v| plain("admin_listen")(v),
            get: |c| c.admin_listen.to_string(),
        },
        Layered {
            flag: "--log-format",
            env: "CHATD_LOG_FORMAT",
            file: "log_format",
            values: ["json", "human", "json"],
            toml: |v| plain("log_format")(v),
            get: |c| format!("{:?}", c.log_format).to_lowercase(),
        },
        Layered {
            flag: "--log",
            env: "CHATD_LOG",
            file: "log",
            values: ["warn", "debug", "chatd=trace"],
            toml: |v| plain("log")(v),
            get: |c| c.log_filter.clone(),
        },
        Layered {
            flag: "--node-id",
            env: "CHATD_NODE_ID",
            file: "node_id",
            values: ["file-node", "env-node", "flag-node"],
            toml: |v| plain("node_id")(v),
            get: |c| c.node_id.clone(),
        },
        Layered {
            flag: "--max-connections",
            env: "CHATD_MAX_CONNECTIONS",
            file: "max_connections",
            values: ["1", "2", "3"],
            toml: |v| format!("max_connections = {v}\n"),
            get: |c| c.max_connections.to_string(),
        },
        Layered {
            flag: "--access-token-ttl",
            env: "CHATD_ACCESS_TOKEN_TTL",
            file: "access_token_ttl",
            values: ["1m", "2m", "3m"],
            toml: |v| plain("access_token_ttl")(v),
            get: |c| crate::limits::keyed::format_duration(c.access_token_ttl),
        },
        Layered {
            flag: "--token-key-file",
            env: "CHATD_TOKEN_KEY_FILE",
            file: "token_key_file",
            values: ["/f.key", "/e.key", "/g.key"],
            toml: |v| plain("token_key_file")(v),
            get: |c| c.token_key_file.display().to_string(),
        },
        Layered {
            flag: "--shutdown-grace",
            env: "CHATD_SHUTDOWN_GRACE",
            file: "shutdown_grace",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("shutdown_grace")(v),
            get: |c| crate::limits::keyed::format_duration(c.shutdown_grace),
        },
        Layered {
            flag: "--limit-send",
            env: "CHATD_LIMIT_SEND",
            file: "limits.send",
            values: ["1/s burst 1", "2/s burst 2", "3/s burst 3"],
            toml: |v| format!("[limits]\nsend = \"{v}\"\n"),
            get: |c| c.limits.send.to_string(),
        },
        Layered {
            flag: "--limit-request",
            env: "CHATD_LIMIT_REQUEST",
            file: "limits.request",
            values: ["1/s burst 1", "2/s burst 2", "3/s burst 3"],
            toml: |v| format!("[limits]\nrequest = \"{v}\"\n"),
            get: |c| c.limits.request.to_string(),
        },
        Layered {
            flag: "--limit-address-request",
            env: "CHATD_LIMIT_ADDRESS_REQUEST",
            file: "limits.address_request",
            values: ["1/s burst 1", "2/s burst 2", "3/s burst 3"],
            toml: |v| format!("[limits]\naddress_request = \"{v}\"\n"),
            get: |c| c.limits.address_request.to_string(),
        },
        Layered {
            flag: "--limit-login-account",
            env: "CHATD_LIMIT_LOGIN_ACCOUNT",
            file: "limits.login_account",
            values: ["1/m burst 1", "2/m burst 2", "3/m burst 3"],
            toml: |v| format!("[limits]\nlogin_account = \"{v}\"\n"),
            get: |c| c.limits.login_account.to_string(),
        },
        Layered {
            flag: "--limit-login-address",
            env: "CHATD_LIMIT_LOGIN_ADDRESS",
            file: "limits.login_address",
            values: ["1/m burst 1", "2/m burst 2", "3/m burst 3"],
            toml: |v| format!("[limits]\nlogin_address = \"{v}\"\n"),
            get: |c| c.limits.login_address.to_string(),
        },
        Layered {
            flag: "--limit-typing",
            env: "CHATD_LIMIT_TYPING",
            file: "limits.typing",
            values: ["1/s burst 1", "2/s burst 2", "3/s burst 3"],
            toml: |v| format!("[limits]\ntyping = \"{v}\"\n"),
            get: |c| c.limits.typing.to_string(),
        },
        Layered {
            flag: "--limit-upload",
            env: "CHATD_LIMIT_UPLOAD",
            file: "limits.upload",
            values: ["1/s burst 1", "2/s burst 2", "3/s burst 3"],
            toml: |v| format!("[limits]\nupload = \"{v}\"\n"),
            get: |c| c.limits.upload.to_string(),
        },
        Layered {
            flag: "--max-file-size",
            env: "CHATD_MAX_FILE_SIZE",
            file: "max_file_size",
            values: ["1024", "2048", "4096"],
            toml: |v| plain("max_file_size")(v),
            get: |c| c.files.max_file_bytes.to_string(),
        },
        Layered {
            flag: "--upload-quota",
            env: "CHATD_UPLOAD_QUOTA",
            file: "upload_quota",
            values: ["1024", "2048", "4096"],
            toml: |v| plain("upload_quota")(v),
            get: |c| c.files.upload_quota_bytes.to_string(),
        },
        Layered {
            flag: "--file-gc-grace",
            env: "CHATD_FILE_GC_GRACE",
            file: "file_gc_grace",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("file_gc_grace")(v),
            get: |c| crate::limits::keyed::format_duration(c.files.gc_grace),
        },
        Layered {
            flag: "--file-gc-interval",
            env: "CHATD_FILE_GC_INTERVAL",
            file: "file_gc_interval",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("file_gc_interval")(v),
            get: |c| crate::limits::keyed::format_duration(c.files.gc_interval),
        },
        Layered {
            flag: "--files-https-listen",
            env: "CHATD_FILES_HTTPS_LISTEN",
            file: "files_https_listen",
            values: ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"],
            toml: |v| plain("files_https_listen")(v),
            get: |c| {
                c.files_https
                    .as_ref()
                    .map(|h| h.listen.to_string())
                    .unwrap_or_default()
            },
        },
        Layered {
            flag: "--file-url-ttl",
            env: "CHATD_FILE_URL_TTL",
            file: "file_url_ttl",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("file_url_ttl")(v),
            get: |c| crate::limits::keyed::format_duration(c.file_url_ttl),
        },
        Layered {
            flag: "--mongo-uri",
            env: "CHATD_MONGO_URI",
            file: "mongo_uri",
            values: ["mongodb://f:1", "mongodb://e:2", "mongodb+srv://g"],
            toml: |v| plain("mongo_uri")(v),
            get: |c| {
                c.mongo_uri
                    .as_ref()
                    .map(|u| u.as_str().to_owned())
                    .unwrap_or_default()
            },
        },
        Layered {
            flag: "--redis-url",
            env: "CHATD_REDIS_URL",
            file: "redis_url",
            values: ["redis://f:1", "redis://e:2", "redis+cluster://g:3,h:4"],
            toml: |v| plain("redis_url")(v),
            get: |c| {
                c.redis_url
                    .as_ref()
                    .map(|u| u.as_str().to_owned())
                    .unwrap_or_default()
            },
        },
        Layered {
            flag: "--steering",
            env: "CHATD_STEERING",
            file: "steering",
            values: ["true", "false", "true"],
            toml: |v| format!("steering = {v}\n"),
            get: |c| c.steering.to_string(),
        },
        Layered {
            flag: "--public-addr",
            env: "CHATD_PUBLIC_ADDR",
            file: "public_addr",
            values: ["file.example:1", "10.0.0.2:2", "[::1]:3"],
            toml: |v| plain("public_addr")(v),
            get: |c| c.public_addr.clone().unwrap_or_default(),
        },
        Layered {
            flag: "--presence-ttl",
            env: "CHATD_PRESENCE_TTL",
            file: "presence_ttl",
            values: ["20s", "30s", "40s"],
            toml: |v| plain("presence_ttl")(v),
            get: |c| crate::limits::keyed::format_duration(c.presence_ttl),
        },
        Layered {
            flag: "--heartbeat-interval",
            env: "CHATD_HEARTBEAT_INTERVAL",
            file: "heartbeat_interval",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("heartbeat_interval")(v),
            get: |c| crate::limits::keyed::format_duration(c.heartbeat_interval),
        },
        Layered {
            flag: "--store-timeout",
            env: "CHATD_STORE_TIMEOUT",
            file: "store_timeout",
            values: ["1s", "2s", "3s"],
            toml: |v| plain("store_timeout")(v),
            get: |c| crate::limits::keyed::format_duration(c.store_timeout),
        },
    ];
    let default = load_ok(&[], &[]);
    for case in &cases {
        let [file_v, env_v, flag_v] = case.values;
        let path = write_file(tmp.path(), &(case.toml)(file_v));
        let flag = format!("{}={flag_v}", case.flag);
        let all = load_ok(&["--config", &path, &flag], &[(case.env, env_v)]);
        assert_eq!((case.get)(&all), flag_v, "{}: flag wins", case.file);
        let env_file = load_ok(&["--config", &path], &[(case.env, env_v)]);
        assert_eq!(
            (case.get)(&env_file),
            env_v,
            "{}: env beats file",
            case.file
        );
        let file_only = load_ok(&["--config", &path], &[]);
        assert_eq!(
            (case.get)(&file_only),
            file_v,
            "{}: file beats default",
            case.file
        );
        if case.file != "node_id" {
            assert_eq!(
                (case.get)(&load_ok(&[], &[])),
                (case.get)(&default),
                "{}: default",
                case.file
            );
        }
    }
    // Every setting with an environment variable is covered above (TLS paths are tested with
    // their pairing rule, the public file url with its own rules, the config file path itself
    // has no file layer).
    for (_, var) in env_bindings() {
        let covered = cases.iter().any(|c| c.env == var)
            || [
                "CHATD_CONFIG",
                "CHATD_TLS_CERT",
                "CHATD_TLS_KEY",
                "CHATD_FILES_PUBLIC_URL",
            ]
            .contains(&var.as_str());
        assert!(covered, "{var} has no precedence test");
    }
}

#[test]
fn tls_paths_layer_and_must_come_in_pairs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(
        tmp.path(),
        "tls_cert = \"/f/cert.pem\"\ntls_key = \"/f/key.pem\"\n",
    );
    let c = load_ok(
        &["--config", &path, "--tls-cert", "/flag/cert.pem"],
        &[("CHATD_TLS_KEY", "/env/key.pem")],
    );
    assert_eq!(
        c.tls,
        Some(TlsPaths {
            cert: "/flag/cert.pem".into(),
            key: "/env/key.pem".into()
        })
    );
    let err = load_with(&["--tls-cert", "/c.pem"], &[]).expect_err("cert alone");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "tls_key",
                ..
            }
        ),
        "{err}"
    );
    let err = load_with(&[], &[("CHATD_TLS_KEY", "/k.pem")]).expect_err("key alone");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "tls_cert",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn config_file_path_from_environment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(tmp.path(), "max_connections = 7\n");
    let c = load_ok(&[], &[("CHATD_CONFIG", &path)]);
    assert_eq!(c.max_connections, 7);
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
}

#[test]
fn token_key_file_defaults_into_the_configured_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(tmp.path(), "data_dir = \"/srv/chat\"\n");
    let c = load_ok(&["--config", &path], &[]);
    assert_eq!(c.token_key_file, PathBuf::from("/srv/chat/token.key"));
}

#[test]
fn token_key_only_from_the_environment() {
    let hex = "a1".repeat(32);
    let c = load_ok(&[], &[(TOKEN_KEY_ENV, &hex)]);
    assert_eq!(c.token_key.as_ref().map(|k| k.to_hex()), Some(hex.clone()));
    let err = load_with(&[], &[(TOKEN_KEY_ENV, "abcd")]).expect_err("short");
    assert!(
        matches!(&err, ConfigError::Env { var, .. } if var == TOKEN_KEY_ENV),
        "{err}"
    );
    // There is no flag for it.
    let err = load_with(&["--token-key", &hex], &[]).expect_err("no such flag");
    assert!(matches!(err, ConfigError::Cli(_)), "{err}");
}

#[test]
fn user_add_subcommand_parses_with_settings_anywhere() {
    let c = load_ok(
        &[
            "user",
            "add",
            "alice",
            "--admin",
            "--password-stdin",
            "--data-dir",
            "/d",
        ],
        &[("CHATD_DATA_DIR", "/env")],
    );
    assert_eq!(
        c.command,
        CliCommand::User {
            action: UserCommand::Add {
                name: "alice".into(),
                admin: true,
                password_stdin: true
            }
        }
    );
    assert_eq!(
        c.data_dir,
        PathBuf::from("/d"),
        "flag after the subcommand wins"
    );
    let c = load_ok(&["user", "add", "bob"], &[("CHATD_DATA_DIR", "/env")]);
    assert_eq!(
        c.command,
        CliCommand::User {
            action: UserCommand::Add {
                name: "bob".into(),
                admin: false,
                password_stdin: false
            }
        }
    );
    assert_eq!(c.data_dir, PathBuf::from("/env"));
    let c = load_ok(&["--data-dir", "/before", "user", "add", "carol"], &[]);
    assert_eq!(c.data_dir, PathBuf::from("/before"));
    assert_eq!(load_ok(&["serve"], &[]).command, CliCommand::Serve);
    assert!(matches!(
        load_with(&["user", "add"], &[]),
        Err(ConfigError::Cli(_))
    ));
}

#[test]
fn help_documents_every_setting_and_its_variable() {
    let err = load_with(&["--help"], &[]).expect_err("help");
    let ConfigError::Cli(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    let help = e.render().to_string();
    let bindings = env_bindings();
    assert!(bindings.len() >= 20, "{bindings:?}");
    for (long, var) in &bindings {
        assert!(help.contains(&format!("--{long}")), "--{long} missing");
        assert!(help.contains(&format!("[env: {var}]")), "{var} missing");
    }
    assert!(help.contains(TOKEN_KEY_ENV));
    assert!(help.contains("[default: 127.0.0.1:4433]"));
    assert!(help.contains("[default: \"20/s burst 60\"]"), "{help}");
}

#[test]
fn bad_values_name_their_source() {
    let err = load_with(&[], &[("CHATD_LISTEN", "not-an-address")]).expect_err("env");
    match &err {
        ConfigError::Env { var, message } => {
            assert_eq!(var, "CHATD_LISTEN");
            assert!(message.contains("not-an-address"), "{message}");
        }
        other => panic!("{other}"),
    }
    let err = load_with(&[], &[("CHATD_LIMIT_SEND", "fast")]).expect_err("env rate");
    assert!(
        matches!(&err, ConfigError::Env { var, .. } if var == "CHATD_LIMIT_SEND"),
        "{err}"
    );
    let err = load_with(&["--listen", "nope"], &[]).expect_err("flag");
    assert!(matches!(err, ConfigError::Cli(_)), "{err}");
    // Empty variables count as unset.
    assert_eq!(
        load_ok(&[], &[("CHATD_LISTEN", "")]).listen,
        "127.0.0.1:4433".parse().expect("addr")
    );

    let invalid_cases: &[(&[&str], &str)] = &[
        (&["--access-token-ttl", "16m"], "access_token_ttl"),
        (&["--access-token-ttl", "0s"], "access_token_ttl"),
        (&["--log", "chatd=loud"], "log"),
        (&["--node-id", "has space"], "node_id"),
        (&["--max-connections", "0"], "max_connections"),
        (&["--mongo-uri", "postgres://x"], "mongo_uri"),
        (&["--mongo-uri", "mongodb://"], "mongo_uri"),
        (&["--redis-url", "localhost:6379"], "redis_url"),
        (&["--redis-url", "rediss://cache:6380"], "redis_url"),
        (&["--redis-url", "redis://a:1,b:2"], "redis_url"),
        (&["--public-addr", "nohost"], "public_addr"),
        (&["--public-addr", "host:0"], "public_addr"),
        (&["--public-addr", "::1:4433"], "public_addr"),
        (&["--heartbeat-interval", "50ms"], "heartbeat_interval"),
        (
            &["--presence-ttl", "5s", "--heartbeat-interval", "3s"],
            "presence_ttl",
        ),
        (&["--store-timeout", "10ms"], "store_timeout"),
    ];
    for (args, setting) in invalid_cases {
        match load_with(args, &[]) {
            Err(ConfigError::Invalid { setting: s, .. }) => assert_eq!(s, *setting, "{args:?}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
}

#[test]
fn config_file_errors_name_the_file_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.toml");
    let err = load_with(&["--config", &missing.to_string_lossy()], &[]).expect_err("missing");
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    assert!(err.to_string().contains("missing.toml"));

    let cases: &[(&str, &str)] = &[
        ("lisen = \"127.0.0.1:1\"\n", "lisen"),
        ("[limits]\nsnd = \"1/s\"\n", "snd"),
        ("\n\nlisten = \"nowhere\"\n", "line 3"),
        ("access_token_ttl = \"forever\"\n", "forever"),
        ("[limits]\nsend = \"lots\"\n", "lots"),
        ("log_format = \"xml\"\n", "xml"),
        ("max_connections = -1\n", "line 1"),
        ("this is not toml", "line 1"),
    ];
    for (text, needle) in cases {
        let path = write_file(tmp.path(), text);
        match load_with(&["--config", &path], &[]) {
            Err(ConfigError::File { path: p, message }) => {
                assert_eq!(p, PathBuf::from(&path));
                assert!(message.contains(needle), "{text:?}: {message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn service_uris_hide_passwords() {
    let uri = ServiceUri("mongodb://app:s3cret@db1:27017,db2/chat?replicaSet=rs0".into());
    assert_eq!(
        uri.redacted(),
        "mongodb://app:***@db1:27017,db2/chat?replicaSet=rs0"
    );
    assert!(!format!("{uri:?}").contains("s3cret"));
    assert!(!uri.to_string().contains("s3cret"));
    assert_eq!(
        uri.as_str(),
        "mongodb://app:s3cret@db1:27017,db2/chat?replicaSet=rs0"
    );
    let plain = ServiceUri("redis://cache:6379/0".into());
    assert_eq!(plain.redacted(), "redis://cache:6379/0");
    let user_only = ServiceUri("redis://user@cache".into());
    assert_eq!(user_only.redacted(), "redis://user@cache");
    let at_in_password = ServiceUri("redis://u:p@ss@cache/0".into());
    assert_eq!(at_in_password.redacted(), "redis://u:***@cache/0");
}

#[test]
fn steering_is_a_flag_with_an_optional_value() {
    assert!(load_ok(&["--steering"], &[]).steering);
    assert!(!load_ok(&["--steering=false"], &[]).steering);
    let c = load_ok(&["--steering", "serve"], &[]);
    assert!(
        c.steering,
        "a following subcommand is not taken as the value"
    );
    assert_eq!(c.command, CliCommand::Serve);
    assert!(load_ok(&[], &[("CHATD_STEERING", "true")]).steering);
    let err = load_with(&[], &[("CHATD_STEERING", "maybe")]).expect_err("bad bool");
    assert!(
        matches!(&err, ConfigError::Env { var, .. } if var == "CHATD_STEERING"),
        "{err}"
    );
}

#[test]
fn help_explains_cluster_urls() {
    let err = load_with(&["--help"], &[]).expect_err("help");
    let ConfigError::Cli(e) = &err else {
        panic!("{err}")
    };
    let help = e.render().to_string();
    for needle in [
        "redis+cluster://",
        "sharded pub/sub",
        "--presence-ttl",
        "--public-addr",
    ] {
        assert!(help.contains(needle), "{needle} missing from the help");
    }
}

#[test]
fn sizes_take_binary_and_decimal_units() {
    assert_eq!(parse_bytes("512"), Ok(512));
    assert_eq!(parse_bytes("100MiB"), Ok(100 << 20));
    assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
    assert_eq!(parse_bytes("2 MB"), Ok(2_000_000));
    assert!(parse_bytes("MiB").is_err());
    assert!(parse_bytes("10 parsecs").is_err());
    assert!(parse_bytes("99999999999TiB").is_err());
}

#[test]
fn the_public_file_url_needs_the_https_server_and_a_plain_url() {
    let on = "--files-https-listen=127.0.0.1:8443";
    let c = load_ok(&[on], &[]);
    let https = c.files_https.expect("https on");
    assert_eq!(https.public_url, None, "default: the bound address");
    let c = load_ok(&[on, "--files-public-url=https://cdn.example/chat/"], &[]);
    assert_eq!(
        c.files_https.expect("on").public_url.as_deref(),
        Some("https://cdn.example/chat")
    );
    assert!(load_ok(&[], &[]).files_https.is_none());
    for (args, setting) in [
        (
            vec!["--files-public-url=https://cdn.example"],
            "files_public_url",
        ),
        (
            vec![on, "--files-public-url=ftp://cdn.example"],
            "files_public_url",
        ),
        (
            vec![on, "--files-public-url=https://cdn.example/?x=1"],
            "files_public_url",
        ),
        (vec!["--max-file-size=0"], "max_file_size"),
        (vec!["--file-url-ttl=200h"], "file_url_ttl"),
    ] {
        let err = Config::load(
            std::iter::once("chatd".into()).chain(args.iter().map(Into::into)),
            |_| None,
        )
        .expect_err("invalid");
        assert!(
            matches!(&err, ConfigError::Invalid { setting: s, .. } if *s == setting),
            "{args:?}: {err}"
        );
    }
}

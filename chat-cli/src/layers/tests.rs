use std::collections::HashMap;

use clap::{Arg, ArgAction, Command};

use super::*;

fn command() -> Command {
    let settings = [
        Arg::new("config")
            .long("config")
            .env("T_CONFIG")
            .value_parser(clap::value_parser!(PathBuf)),
        Arg::new("port")
            .long("port")
            .env("T_PORT")
            .value_parser(clap::value_parser!(u16).range(1..))
            .default_value("80"),
        Arg::new("name")
            .long("name")
            .env("T_NAME")
            .default_value("n"),
        Arg::new("limit_send")
            .long("limit-send")
            .env("T_LIMIT_SEND")
            .default_value("1"),
        Arg::new("flag")
            .long("flag")
            .env("T_FLAG")
            .num_args(0..=1)
            .require_equals(true)
            .default_value("false")
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool))
            .action(ArgAction::Set),
    ];
    Command::new("t")
        .args(settings.clone())
        .args_conflicts_with_subcommands(true)
        .subcommand(Command::new("serve").args(settings.clone()))
        .subcommand(
            Command::new("user").subcommand(
                Command::new("add")
                    .arg(Arg::new("who").required(true))
                    .args(settings[..2].iter().cloned()),
            ),
        )
}

struct Setup {
    env: HashMap<String, String>,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(env: &[(&str, &str)]) -> Setup {
        Setup {
            env: env
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn file(&self, text: &str) -> String {
        let path = self.dir.path().join("t.toml");
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }

    fn parse(&self, args: &[&str]) -> Result<ArgMatches, LayerError> {
        let lookup = |k: &str| self.env.get(k).cloned();
        let other = vec![
            "name".to_owned(),
            "flag".to_owned(),
            "limit_send".to_owned(),
        ];
        let layers = Layers {
            env: &lookup,
            config_arg: Some("config"),
            tables: &[("limits", "limit_")],
            other_ids: &other,
        };
        let args = std::iter::once("t")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&command(), args, &layers)
    }
}

fn leaf(m: &ArgMatches) -> &ArgMatches {
    match m.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => m,
    }
}

fn port(m: &ArgMatches) -> u16 {
    *leaf(m).get_one::<u16>("port").expect("port")
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let s = Setup::new(&[("T_PORT", "2")]);
    let file = s.file("port = 1\nname = \"from-file\"\n[limits]\nsend = \"5\"\n");
    for prefix in [&[][..], &["serve"][..]] {
        let with = |rest: &[&str]| -> Vec<String> {
            prefix.iter().chain(rest).map(|s| (*s).to_owned()).collect()
        };
        let args = with(&["--config", &file, "--port", "3"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let m = s.parse(&args).expect("parse");
        assert_eq!(port(&m), 3, "flag wins ({prefix:?})");
        let args = with(&["--config", &file]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let m = s.parse(&args).expect("parse");
        assert_eq!(port(&m), 2, "environment beats the file");
        assert_eq!(
            leaf(&m).get_one::<String>("name").map(String::as_str),
            Some("from-file")
        );
        assert_eq!(
            leaf(&m).get_one::<String>("limit_send").map(String::as_str),
            Some("5")
        );
    }
    let s = Setup::new(&[]);
    let file = s.file("port = 1\n");
    assert_eq!(
        port(&s.parse(&["--config", &file]).expect("parse")),
        1,
        "file beats default"
    );
    assert_eq!(port(&s.parse(&[]).expect("parse")), 80, "default");
}

#[test]
fn the_config_file_may_come_from_the_environment() {
    let s = Setup::new(&[]);
    let file = s.file("port = 7\n");
    let s = Setup {
        env: [("T_CONFIG".to_owned(), file)].into(),
        dir: s.dir,
    };
    assert_eq!(port(&s.parse(&[]).expect("parse")), 7);
}

#[test]
fn a_subcommand_takes_only_its_own_settings_from_the_layers() {
    let s = Setup::new(&[("T_PORT", "9"), ("T_NAME", "ignored")]);
    let file = s.file("port = 8\nname = \"other command's\"\nflag = true\n");
    let m = s
        .parse(&["user", "add", "alice", "--config", &file])
        .expect("parse");
    assert_eq!(port(&m), 9);
    assert_eq!(
        leaf(&m).get_one::<String>("who").map(String::as_str),
        Some("alice")
    );
    let m = s.parse(&["user", "add", "--port=4", "bob"]).expect("parse");
    assert_eq!(port(&m), 4);
}

#[test]
fn a_bad_value_names_its_variable() {
    let s = Setup::new(&[("T_PORT", "0")]);
    match s.parse(&[]) {
        Err(LayerError::Env { var, message }) => {
            assert_eq!(var, "T_PORT");
            assert!(message.contains('0'), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let s = Setup::new(&[("T_FLAG", "maybe")]);
    assert!(matches!(s.parse(&[]), Err(LayerError::Env { var, .. }) if var == "T_FLAG"));
    // Empty variables count as unset.
    let s = Setup::new(&[("T_PORT", "")]);
    assert_eq!(port(&s.parse(&[]).expect("parse")), 80);
}

#[test]
fn file_errors_point_at_line_and_column() {
    let s = Setup::new(&[]);
    let cases: &[(&str, usize, usize, &str)] = &[
        ("\n\nport = 0\n", 3, 8, "port"),
        ("name = \"x\"\nprot = 1\n", 2, 1, "unknown setting \"prot\""),
        ("[limits]\nsned = \"1\"\n", 2, 1, "limits.sned"),
        ("port = [1]\n", 1, 8, "array"),
        ("limits = 3\n", 1, 10, "must be a table"),
        ("config = \"other.toml\"\n", 1, 1, "another config file"),
        ("flag = \"maybe\"\n", 1, 8, "maybe"),
        ("name = \"unterminated\nport = 1\n", 1, 21, ""),
        ("this is not toml\n", 1, 6, ""),
    ];
    for (text, line, column, needle) in cases {
        let file = s.file(text);
        match s.parse(&["--config", &file]) {
            Err(LayerError::File {
                path,
                position,
                message,
            }) => {
                assert_eq!(path.display().to_string(), file);
                assert_eq!(
                    (position.line, position.column),
                    (*line, *column),
                    "{text:?}: {message}"
                );
                assert!(message.contains(needle), "{text:?}: {message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let missing = s.dir.path().join("missing.toml");
    let missing = missing.display().to_string();
    assert!(matches!(
        s.parse(&["--config", &missing]),
        Err(LayerError::ReadFile { .. })
    ));
}

#[test]
fn help_names_the_variables_and_reads_no_process_environment() {
    let help = without_env(command()).render_long_help().to_string();
    assert!(help.contains("[env: T_PORT]"), "{help}");
    let sub = without_env(command());
    let add = sub
        .find_subcommand("user")
        .and_then(|u| u.find_subcommand("add"))
        .expect("user add");
    assert!(add.get_arguments().all(|a| a.get_env().is_none()));
}

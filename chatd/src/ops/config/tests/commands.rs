//! The subcommands' own options, help, version and generated pages.

use clap::CommandFactory as _;

use super::*;

#[test]
fn user_add_takes_its_own_options_and_the_storage_settings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The file a server uses: user add reads where the data is and ignores the rest.
    let path = write_file(
        tmp.path(),
        "data_dir = \"/file\"\nlisten = \"127.0.0.1:1\"\n[limits]\nsend = \"1/s\"\n",
    );
    let add = |args: &[&str], env: &[(&str, &str)]| match invoke(args, env) {
        Ok(Invocation::UserAdd(add)) => add,
        other => panic!("{args:?}: {other:?}"),
    };
    let a = add(
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
        (a.name.as_str(), a.admin, a.password_stdin),
        ("alice", true, true)
    );
    assert_eq!(a.storage.data_dir, PathBuf::from("/d"), "the flag wins");
    let b = add(&["user", "add", "bob"], &[("CHATD_DATA_DIR", "/env")]);
    assert_eq!((b.admin, b.password_stdin), (false, false));
    assert_eq!(b.storage.data_dir, PathBuf::from("/env"));
    let c = add(&["user", "add", "carol", "--config", &path], &[]);
    assert_eq!(c.storage.data_dir, PathBuf::from("/file"));
    let d = add(
        &[
            "user",
            "add",
            "dave",
            "--mongo-uri",
            "mongodb://db:27017/chat",
        ],
        &[("CHATD_LISTEN", "127.0.0.1:9")],
    );
    assert!(d.storage.mongo_uri.is_some());
    // Server settings are not options of user add, and settings do not go before it.
    for args in [
        &["user", "add", "erin", "--listen", "127.0.0.1:1"][..],
        &["--data-dir", "/before", "user", "add", "frank"][..],
        &["user", "add"][..],
    ] {
        assert!(
            matches!(
                invoke(args, &[]),
                Err(ConfigError::Layers(LayerError::Cli(_)))
            ),
            "{args:?}"
        );
    }
    assert!(matches!(invoke(&["serve"], &[]), Ok(Invocation::Serve(_))));
}

#[test]
fn each_command_helps_with_its_own_options_only() {
    let top = help_of(&["--help"]);
    let serve = help_of(&["serve", "--help"]);
    let add = help_of(&["user", "add", "--help"]);
    for help in [&top, &serve] {
        for var in env_vars(&Cli::command()) {
            assert!(help.contains(&format!("[env: {var}]")), "{var} missing");
        }
        assert!(help.contains("--listen"), "{help}");
    }
    for own in [
        "--admin",
        "--password-stdin",
        "--data-dir",
        "--mongo-uri",
        "--config",
        "--encryption-key-file",
    ] {
        assert!(
            add.contains(own),
            "{own} missing from user add --help:\n{add}"
        );
    }
    for server_only in [
        "--listen",
        "--limit-send",
        "--redis-url",
        "--steering",
        "--log",
    ] {
        assert!(
            !add.contains(server_only),
            "{server_only} in user add --help:\n{add}"
        );
    }
    let options = add
        .lines()
        .map(str::trim_start)
        // Option lines; a possible value's description line starts with "- " instead.
        .filter(|l| l.starts_with("--") || (l.starts_with('-') && !l.starts_with("- ")))
        .count();
    // The storage settings (data directory, MongoDB, durability, the two key files), --config,
    // --password-stdin, --admin and --help.
    assert!(
        options <= 9,
        "user add --help lists {options} options:\n{add}"
    );
    let rekey = help_of(&["db", "rekey", "--help"]);
    for own in ["--data-dir", "--encryption-key-file", "--new-key-file"] {
        assert!(
            rekey.contains(own),
            "{own} missing from db rekey --help:\n{rekey}"
        );
    }
    assert!(!rekey.contains("--listen"), "{rekey}");
    let encrypt = help_of(&["files", "encrypt", "--help"]);
    for own in [
        "--data-dir",
        "--mongo-uri",
        "--encryption-key-file",
        "--previous-encryption-key-file",
    ] {
        assert!(
            encrypt.contains(own),
            "{own} missing from files encrypt --help:\n{encrypt}"
        );
    }
    assert!(!encrypt.contains("--listen"), "{encrypt}");
}

#[test]
fn help_documents_every_setting_and_its_variable() {
    let help = help_of(&["--help"]);
    let vars = env_vars(&Cli::command());
    assert!(vars.len() >= 20, "{vars:?}");
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(help.contains(&format!("--{long}")), "--{long} missing");
        }
    }
    assert!(help.contains(TOKEN_KEY_ENV));
    assert!(help.contains("[default: 127.0.0.1:4433]"));
    assert!(help.contains("[default: \"20/s burst 60\"]"), "{help}");
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
fn version_names_the_commit_or_the_build() {
    let version = match invoke(&["--version"], &[]) {
        Err(ConfigError::Layers(LayerError::Cli(e))) => e.render().to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        version.starts_with(concat!("chatd ", env!("CARGO_PKG_VERSION"), " (")),
        "{version}"
    );
    assert!(
        version.contains("commit") || version.contains("debug build"),
        "{version}"
    );
}

#[test]
fn generate_prints_man_pages_and_completions() {
    for (kind, expected) in [
        ("man", Generate::Man),
        ("complete-bash", Generate::CompleteBash),
    ] {
        match invoke(&["--generate", kind], &[]) {
            Ok(Invocation::Generate(k)) => assert_eq!(k, expected),
            other => panic!("{kind}: {other:?}"),
        }
    }
    let mut man = Vec::new();
    Generate::Man.write(command(), &mut man).expect("man page");
    let man = String::from_utf8(man).expect("utf-8");
    assert!(
        man.contains("listen") && man.contains("CHATD_LISTEN"),
        "{man}"
    );
}

//! Settings from flags, environment variables and a TOML file, through ONE declaration: the
//! clap argument (its `long`, its `env`, its `value_parser`, its default).
//!
//! How the layers meet: [`parse`] turns each value of the file and each variable into a
//! `--flag=value` argument placed before the real arguments, file first; the command is built
//! with `args_override_self`, so a later value wins: flag > environment > file > default. The
//! values go through the flag's own parser, so they are checked alike, and each is checked alone
//! first so that an error names its variable, or its file, line and column.
//!
//! The file's keys are the argument ids (the field names: `data_dir` for `--data-dir`); a table
//! listed in [`Layers::tables`] holds the arguments with its prefix (`[limits] send` is
//! `limit_send`). Unknown keys are errors, so a typo never falls back to a default silently.
//!
//! clap would read the process environment itself for an argument with `env`: [`without_env`]
//! removes those attributes (naming the variable in the help instead), and the environment is
//! read only through the lookup given to [`parse`], which keeps the tests hermetic.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

use crate::position::Position;

/// Where the environment and the file come from.
pub struct Layers<'a> {
    /// The environment lookup (e.g. `|k| std::env::var(k).ok()`); empty values count as unset.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The id of the argument that names the TOML file (a `PathBuf` argument), if any.
    pub config_arg: Option<&'static str>,
    /// `(table, id prefix)`: the keys of `[table]` are the arguments `prefix + key`.
    pub tables: &'a [(&'static str, &'static str)],
    /// Ids the file may set that the invoked command does not use (settings of another
    /// subcommand sharing the file): accepted and ignored.
    pub other_ids: &'a [String],
}

/// Why the settings could not be parsed. Each variant names where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Bad command line, or `--help`/`--version` (call [`clap::Error::exit`]).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// An environment variable has an invalid value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML, or has an unknown key or a bad value.
    #[error("{}:{position}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        position: Position,
        /// What is wrong.
        message: String,
    },
}

/// `cmd` and its subcommands without `env` attributes, the variable named in each help text.
pub fn without_env(cmd: Command) -> Command {
    let cmd = cmd
        .args_override_self(true)
        .mut_args(|arg| match env_var(&arg) {
            Some(var) => {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.env(None).help(format!("{help} [env: {var}]"))
            }
            None => arg,
        });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names
        .iter()
        .fold(cmd, |cmd, name| cmd.mut_subcommand(name, without_env))
}

fn env_var(arg: &Arg) -> Option<String> {
    arg.get_env().map(|v| v.to_string_lossy().into_owned())
}

/// The first line of a clap error, without its "error: " prefix.
pub fn clap_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// Parses a program that reads flags and environment variables only, no configuration file:
/// `args` (program name first) over the lookup `env`, as [`parse`] does.
///
/// # Errors
/// A bad option or variable, named; [`LayerError::Cli`] also for `--help` and `--version`.
pub fn parse_env_only<T: clap::Parser>(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<T, LayerError> {
    let layers = Layers {
        env,
        config_arg: None,
        tables: &[],
        other_ids: &[],
    };
    let matches = parse(&T::command(), args.into_iter().collect(), &layers)?;
    Ok(T::from_arg_matches(&matches)?)
}

/// Parses `args` (program name first) with `cmd` (declared with `env` attributes) over the
/// environment and the file of `layers`.
pub fn parse(
    cmd: &Command,
    args: Vec<OsString>,
    layers: &Layers<'_>,
) -> Result<ArgMatches, LayerError> {
    let plain = without_env(cmd.clone());
    let first = plain.clone().try_get_matches_from(&args)?;

    // The invoked subcommand: its arguments are the ones the layers may set.
    let mut path = Vec::new();
    let mut matches = &first;
    let mut leaf = cmd.clone();
    while let Some((name, sub)) = matches.subcommand() {
        path.push(name.to_owned());
        leaf = find_subcommand(&leaf, name);
        matches = sub;
    }
    let leaf_args: Vec<&Arg> = leaf.get_arguments().collect();

    let mut layered = Vec::new();
    let config_arg = layers
        .config_arg
        .and_then(|id| leaf_args.iter().find(|a| a.get_id() == id).copied());
    if let Some(arg) = config_arg {
        let from_flag = matches
            .get_one::<PathBuf>(arg.get_id().as_str())
            .filter(|_| {
                matches.value_source(arg.get_id().as_str())
                    == Some(clap::parser::ValueSource::CommandLine)
            })
            .cloned();
        let from_env = env_var(arg)
            .and_then(|var| (layers.env)(&var))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let Some(file) = from_flag.or(from_env) {
            let text = std::fs::read_to_string(&file).map_err(|source| LayerError::ReadFile {
                path: file.clone(),
                source,
            })?;
            layered.extend(file_flags(&leaf_args, &file, &text, layers)?);
        }
    }
    for arg in &leaf_args {
        let (Some(var), Some(long)) = (env_var(arg), arg.get_long()) else {
            continue;
        };
        let Some(value) = (layers.env)(&var).filter(|v| !v.is_empty()) else {
            continue;
        };
        check_value(arg, &value).map_err(|message| LayerError::Env { var, message })?;
        layered.push(OsString::from(format!("--{long}={value}")));
    }

    // Program, subcommand names, the layers, then the real arguments after the names.
    let mut rest = args.into_iter();
    let mut all: Vec<OsString> = rest.next().into_iter().collect();
    let mut wanted = path.iter().peekable();
    let mut before = Vec::new();
    for arg in rest.by_ref() {
        let is_next = wanted
            .peek()
            .is_some_and(|name| OsStr::new(name.as_str()) == arg);
        before.push(arg);
        if is_next {
            wanted.next();
            if wanted.peek().is_none() {
                break;
            }
        }
    }
    if path.is_empty() {
        // No subcommand: everything read above is a real argument.
        all.extend(layered);
        all.extend(before);
    } else {
        all.extend(before);
        all.extend(layered);
    }
    all.extend(rest);
    Ok(plain.try_get_matches_from(all)?)
}

fn find_subcommand(cmd: &Command, name: &str) -> Command {
    cmd.find_subcommand(name)
        .cloned()
        .unwrap_or_else(|| panic!("clap matched subcommand {name} that its command lacks"))
}

/// Checks one value with the argument's own parser (through a command of that argument alone,
/// as clap does not expose the parser call); the message on failure. Arguments read from the
/// layers must not `require` or `conflict_with` others.
fn check_value(arg: &Arg, value: &str) -> Result<(), String> {
    let Some(long) = arg.get_long() else {
        return Err(format!("{} cannot be given here", arg.get_id()));
    };
    Command::new("setting")
        .arg(arg.clone().required(false).env(None))
        .try_get_matches_from(["setting".to_owned(), format!("--{long}={value}")])
        .map(drop)
        .map_err(|e| clap_message(&e))
}

/// The `--flag=value` arguments of the TOML `text`.
fn file_flags(
    args: &[&Arg],
    path: &std::path::Path,
    text: &str,
    layers: &Layers<'_>,
) -> Result<Vec<OsString>, LayerError> {
    let error = |offset: usize, message: String| LayerError::File {
        path: path.to_path_buf(),
        position: Position::of(text, offset),
        message,
    };
    let table = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        error(offset, e.message().trim_end().to_owned())
    })?;
    let mut entries = Vec::new();
    for (key, value) in table.get_ref() {
        let prefix = layers
            .tables
            .iter()
            .find(|(name, _)| *name == key.get_ref().as_ref())
            .map(|(_, prefix)| *prefix);
        match (prefix, value.get_ref()) {
            (Some(prefix), DeValue::Table(inner)) => {
                for (k, v) in inner {
                    let id = format!("{prefix}{}", k.get_ref());
                    entries.push((id, format!("{}.{}", key.get_ref(), k.get_ref()), k, v));
                }
            }
            (Some(_), _) => {
                return Err(error(
                    value.span().start,
                    format!("{} must be a table", key.get_ref()),
                ));
            }
            (None, _) => entries.push((
                key.get_ref().to_string(),
                key.get_ref().to_string(),
                key,
                value,
            )),
        }
    }
    let mut flags = Vec::new();
    for (id, shown, key, value) in entries {
        if layers.config_arg == Some(id.as_str()) {
            return Err(error(
                key.span().start,
                format!("{shown}: the config file cannot name another config file"),
            ));
        }
        let Some(arg) = args.iter().find(|a| a.get_id() == id.as_str()) else {
            if layers.other_ids.contains(&id) {
                continue;
            }
            return Err(error(
                key.span().start,
                format!("unknown setting {shown:?}"),
            ));
        };
        let Some(long) = arg.get_long() else {
            return Err(error(
                key.span().start,
                format!("{shown} cannot be set in a file"),
            ));
        };
        let text_value = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
            DeValue::Float(f) => f.as_str().to_owned(),
            DeValue::Boolean(b) => b.to_string(),
            other => {
                return Err(error(
                    value.span().start,
                    format!(
                        "{shown}: expected a string, number or boolean, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        check_value(arg, &text_value)
            .map_err(|message| error(value.span().start, format!("{shown}: {message}")))?;
        flags.push(OsString::from(format!("--{long}={text_value}")));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests;

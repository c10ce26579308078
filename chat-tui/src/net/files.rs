//! File transfers for the update function's `Upload` and `Download` commands, through the SDK's
//! resumable [`Client::upload_path`] and [`Client::download_to_path`].
//!
//! Each transfer runs in a task of its own that the session aborts to cancel it. Progress is
//! reported at most ten times a second and dropped, not waited for, when the app is busy: the
//! next report or the result supersedes it. Errors are sentences: a missing or unreadable path,
//! a file over the server's limit (checked before any byte is hashed or sent), the quota.
//!
//! A download never replaces a file: it takes the first free name of `name`, `name (1).ext`,
//! `name (2).ext`… and holds it with an empty file while the bytes arrive in `<name>.part`;
//! a download that fails or is cancelled removes both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientError};
use chatproto::pb;

use super::Actions;
use super::describe::describe;
use crate::action::{Action, NetEvent};
use crate::effect::NetCommand;
use crate::paths::display;
use crate::widgets::human_size;

/// Progress is reported at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// `~/rest` under `home`; anything else as typed.
pub fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home.map_or_else(|| PathBuf::from(path), Path::to_path_buf),
        _ => PathBuf::from(path),
    }
}

/// The kind an upload is declared as: an image for the formats the server decodes (it checks
/// the content), a plain file otherwise.
pub fn kind_for(name: &str) -> pb::MessageKind {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png" | "jpg" | "jpeg" | "gif" | "webp") => pb::MessageKind::Image,
        _ => pb::MessageKind::File,
    }
}

/// A file name from the server that is safe to create in the download directory: its last
/// path component without control characters; the file id when nothing usable is left.
pub fn local_name(file: &pb::FileInfo) -> String {
    let last = file.name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    match clean.trim() {
        "" | "." | ".." => format!("file-{}", file.id),
        name => name.to_string(),
    }
}

/// `dir/name`, or the first of `dir/stem (1).ext`, `dir/stem (2).ext`… for which `taken` is
/// false.
pub fn free_path(dir: &Path, name: &str, taken: impl Fn(&Path) -> bool) -> PathBuf {
    let first = dir.join(name);
    if !taken(&first) {
        return first;
    }
    // The number goes before the extension; `archive.tar.gz` keeps both of its extensions and
    // the leading dot of `.bashrc` is not one.
    let split = name.rfind('.').filter(|&i| i > 0).map(|i| {
        let stem = &name[..i];
        stem.strip_suffix(".tar")
            .filter(|s| !s.is_empty())
            .map_or(i, |s| s.len())
    });
    let (stem, ext) = split.map_or((name, ""), |i| name.split_at(i));
    (1u32..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !taken(p))
        .expect("some number is free")
}

/// An SDK error of a transfer in words.
fn describe_transfer(error: &ClientError) -> String {
    match error {
        ClientError::Remote(e) if e.code == pb::ErrorCode::TooLarge => {
            // "begin_upload.size: over your upload quota of …": the field is not for people.
            let message = e.message.trim();
            let message = message
                .strip_prefix(&format!("{}:", e.field))
                .unwrap_or(message)
                .trim();
            format!("too large for the server: {message}")
        }
        ClientError::Remote(e) if e.code == pb::ErrorCode::InvalidArgument => {
            format!("the server refused it: {}", e.message.trim())
        }
        ClientError::Config(message) | ClientError::LocalIo(message) => message.clone(),
        other => describe(other),
    }
}

/// Throttles progress reports and sends them without waiting.
struct Progress<'a> {
    actions: &'a Actions,
    token: u64,
    last: Option<Instant>,
}

impl Progress<'_> {
    fn report(&mut self, done: u64, total: u64) {
        let now = Instant::now();
        if done < total && self.last.is_some_and(|t| now - t < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(now);
        let event = NetEvent::TransferProgress {
            token: self.token,
            done,
            total,
        };
        let _ = self.actions.try_send(Action::Net(event));
    }
}

/// Uploads the file at `path` (as typed) and returns what the server stored. `progress` gets
/// `(sent, total)`.
///
/// # Errors
/// A sentence: no such file, a directory, unreadable, over the server's limit or the quota.
pub async fn upload(
    client: &Client,
    path: &str,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<pb::FileInfo, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let full = expand_home(path, home.as_deref());
    let meta = tokio::fs::metadata(&full)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("there is no file {path}"),
            std::io::ErrorKind::PermissionDenied => format!("{path} may not be read"),
            _ => format!("{path}: {e}"),
        })?;
    if meta.is_dir() {
        return Err(format!("{path} is a directory, not a file"));
    }
    if meta.len() == 0 {
        return Err(format!("{path} is empty"));
    }
    let limit = client
        .welcome()
        .and_then(|w| w.limits)
        .map_or(0, |l| l.max_file_bytes);
    if limit > 0 && meta.len() > limit {
        return Err(format!(
            "{path} is too large: {}, the server takes files up to {}",
            human_size(meta.len()),
            human_size(limit)
        ));
    }
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    client
        .upload_path(&full, kind_for(&name), progress)
        .await
        .map_err(|e| describe_transfer(&e))
}

/// Removes a download's placeholder and part file unless the download completed.
struct Reservation {
    path: PathBuf,
    part: PathBuf,
    done: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            // Also on cancel (the task is dropped), so it cannot wait: plain blocking calls on
            // local files.
            let _ = std::fs::remove_file(&self.part);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Downloads `file` into `dir` under a name no file there has, and returns its path.
/// `progress` gets `(received, total)`.
///
/// # Errors
/// A sentence: the directory cannot be written, the file is gone, the connection failed.
pub async fn download(
    client: &Client,
    file: &pb::FileInfo,
    dir: &Path,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<PathBuf, String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", display(dir)))?;
    let name = local_name(file);
    // Take the name with an empty file, so a second download of the same name (or another
    // program) picks another one; `taken` only skips names seen taken, create_new decides.
    let mut reservation = loop {
        let path = free_path(dir, &name, |p| {
            p.exists() || {
                let mut part = p.as_os_str().to_owned();
                part.push(".part");
                Path::new(&part).exists()
            }
        });
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {
                let mut part = path.as_os_str().to_owned();
                part.push(".part");
                break Reservation {
                    path,
                    part: PathBuf::from(part),
                    done: false,
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write in {}: {e}", display(dir))),
        }
    };
    client
        .download_to_path(&file.id, &reservation.path, progress)
        .await
        .map_err(|e| match e.code() {
            Some(pb::ErrorCode::NotFound) => {
                "the file is gone (deleted, or no longer readable by you)".to_string()
            }
            _ => describe_transfer(&e),
        })?;
    reservation.done = true;
    Ok(reservation.path.clone())
}

/// Runs an `Upload` or `Download` command and reports its progress and result.
pub async fn run(
    client: std::sync::Arc<Client>,
    download_dir: PathBuf,
    command: NetCommand,
    actions: Actions,
) {
    let event = match command {
        NetCommand::Upload { token, path } => {
            let mut progress = Progress {
                actions: &actions,
                token,
                last: None,
            };
            match upload(&client, &path, |d, t| progress.report(d, t)).await {
                Ok(file) => NetEvent::Uploaded { token, file },
                Err(error) => NetEvent::TransferFailed { token, error },
            }
        }
        NetCommand::Download { token, file } => {
            let mut progress = Progress {
                actions: &actions,
                token,
                last: None,
            };
            match download(&client, &file, &download_dir, |d, t| progress.report(d, t)).await {
                Ok(path) => NetEvent::Downloaded {
                    token,
                    path: display(&path),
                },
                Err(error) => NetEvent::TransferFailed { token, error },
            }
        }
        _ => return,
    };
    let _ = actions.send(Action::Net(event)).await;
}

/// The token of a transfer command.
pub fn token(command: &NetCommand) -> Option<u64> {
    match command {
        NetCommand::Upload { token, .. } | NetCommand::Download { token, .. } => Some(*token),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = Path::new("/dl");
        let taken = [
            "/dl/report.pdf",
            "/dl/report (1).pdf",
            "/dl/.bashrc",
            "/dl/a.tar.gz",
            "/dl/README",
            "/dl/v1.2.txt",
        ];
        let is_taken = |p: &Path| taken.iter().any(|t| Path::new(t) == p);
        // (wanted name, path it gets)
        let cases = [
            ("new.txt", "/dl/new.txt"),
            ("report.pdf", "/dl/report (2).pdf"),
            (".bashrc", "/dl/.bashrc (1)"),
            ("a.tar.gz", "/dl/a (1).tar.gz"),
            ("README", "/dl/README (1)"),
            ("v1.2.txt", "/dl/v1.2 (1).txt"),
        ];
        for (name, expected) in cases {
            assert_eq!(
                free_path(dir, name, is_taken),
                PathBuf::from(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn names_from_the_server_stay_in_the_directory() {
        let file = |name: &str| pb::FileInfo {
            id: "abc".into(),
            name: name.into(),
            ..Default::default()
        };
        assert_eq!(local_name(&file("../../etc/passwd")), "passwd");
        assert_eq!(local_name(&file("..")), "file-abc");
        assert_eq!(local_name(&file("")), "file-abc");
        assert_eq!(local_name(&file("a\u{7}b.txt")), "ab.txt");
    }

    #[test]
    fn paths_and_kinds() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_home("~/a.txt", Some(home)),
            PathBuf::from("/home/u/a.txt")
        );
        assert_eq!(expand_home("~", Some(home)), PathBuf::from("/home/u"));
        assert_eq!(expand_home("~/a.txt", None), PathBuf::from("~/a.txt"));
        assert_eq!(
            expand_home("rel/a.txt", Some(home)),
            PathBuf::from("rel/a.txt")
        );
        assert_eq!(kind_for("Photo.JPG"), pb::MessageKind::Image);
        assert_eq!(kind_for("notes.txt"), pb::MessageKind::File);
        assert_eq!(kind_for("png"), pb::MessageKind::File);
    }
}

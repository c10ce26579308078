//! File transfers in progress, as the progress bar shows them. A transfer is known by the token
//! of the command that started it; what the network task reports for a token that is no longer
//! here (a cancelled transfer) is ignored.

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a local file to the server, then into a chat as a message.
    Upload,
    /// From the server into the download directory.
    Download,
}

/// One transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The token of the command that started it.
    pub token: u64,
    /// Upload or download.
    pub direction: Direction,
    /// The file's name, as shown.
    pub name: String,
    /// The chat an upload goes to (and a download came from).
    pub chat_id: u64,
    /// A download's file (empty for an upload).
    pub file_id: String,
    /// Bytes sent or received.
    pub done: u64,
    /// Bytes in all (0 until known).
    pub total: u64,
}

impl Transfer {
    /// How far it is, 0.0 to 1.0.
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// "Upload" or "Download", for messages.
    pub fn what(&self) -> &'static str {
        match self.direction {
            Direction::Upload => "Upload",
            Direction::Download => "Download",
        }
    }
}

/// The transfers in progress, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfers {
    list: Vec<Transfer>,
}

impl Transfers {
    /// Adds a transfer.
    pub fn start(&mut self, transfer: Transfer) {
        self.list.push(transfer);
    }

    /// Records progress; false when the token is not a transfer in progress.
    pub fn progress(&mut self, token: u64, done: u64, total: u64) -> bool {
        match self.list.iter_mut().find(|t| t.token == token) {
            Some(t) => {
                t.done = done;
                t.total = total;
                true
            }
            None => false,
        }
    }

    /// Removes a transfer (finished, failed or cancelled) and returns it.
    pub fn finish(&mut self, token: u64) -> Option<Transfer> {
        let i = self.list.iter().position(|t| t.token == token)?;
        Some(self.list.remove(i))
    }

    /// The newest transfer (the one the progress bar shows and cancelling stops).
    pub fn latest(&self) -> Option<&Transfer> {
        self.list.last()
    }

    /// Whether file `file_id` is being downloaded.
    pub fn downloading(&self, file_id: &str) -> bool {
        self.list
            .iter()
            .any(|t| t.direction == Direction::Download && t.file_id == file_id)
    }

    /// How many transfers are in progress.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// None in progress.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(token: u64, direction: Direction) -> Transfer {
        Transfer {
            token,
            direction,
            name: format!("f{token}"),
            chat_id: 1,
            file_id: match direction {
                Direction::Upload => String::new(),
                Direction::Download => format!("id{token}"),
            },
            done: 0,
            total: 0,
        }
    }

    #[test]
    fn progress_and_finish_by_token() {
        let mut t = Transfers::default();
        t.start(transfer(1, Direction::Upload));
        t.start(transfer(2, Direction::Download));
        assert_eq!(t.latest().unwrap().token, 2);
        assert!(t.progress(1, 50, 200));
        assert!(!t.progress(9, 1, 1), "unknown token");
        assert!(t.downloading("id2"));
        assert!(!t.downloading(""), "an upload is not a download");
        assert_eq!(t.finish(2).unwrap().direction, Direction::Download);
        assert_eq!(t.latest().unwrap().ratio(), 0.25);
        assert_eq!(t.finish(2), None);
        assert_eq!(t.len(), 1);
        assert_eq!(
            transfer(3, Direction::Upload).ratio(),
            0.0,
            "size unknown yet"
        );
    }
}

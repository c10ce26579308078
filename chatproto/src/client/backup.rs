//! `admin_backup`: a copy of the server's embedded database, whose bytes follow the answer on
//! the request stream as a download's do (protocol.md 9.6), read with the same code.

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::files::{Sink, StreamFailure, ask_for_bytes, give_up, local, receive_bytes};
use super::{Client, ClientError};
use crate::pb;

impl Client {
    /// Takes a backup of the server's embedded database (server admins only): writes the
    /// copy's bytes to `writer` and returns its size and SHA-256, which the bytes written were
    /// checked against. `progress` gets `(received, total)`.
    ///
    /// Never repeated by itself: after a lost connection the server makes a new copy, so the
    /// caller starts over with an empty writer. The answer comes once the copy is made and
    /// hashed, which takes as long as the database is large: the SDK does not bound that wait
    /// (the caller may); the bytes after it stop after 30 s without one. UNAVAILABLE (another backup of that node runs)
    /// and FAILED_PRECONDITION (the server's data is not in the embedded database) come back
    /// as [`ClientError::Remote`].
    pub async fn admin_backup_to_writer<W: AsyncWrite + Unpin + Send>(
        &self,
        writer: &mut W,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<pb::BackupInfo, ClientError> {
        let link = self.shared.wait_link().await?;
        let fail = |failure: StreamFailure| match failure {
            StreamFailure::Fatal(e) => e,
            other => give_up(other),
        };
        let (answer, recv, first) = ask_for_bytes(
            &link,
            self.shared.ids.next_id(),
            pb::request::Kind::AdminBackup(pb::AdminBackup {}),
            false,
        )
        .await
        .map_err(fail)?;
        let info = match answer {
            pb::response::Result::Backup(info) => info,
            other => return Err(super::requests::unexpected("admin_backup", other.name())),
        };
        let mut hasher = Some(Sha256::new());
        let mut at = 0;
        let mut sink = Sink {
            writer,
            hasher: &mut hasher,
            total: info.size,
            progress: &mut progress,
        };
        receive_bytes(recv, first, &mut at, info.size, &mut sink)
            .await
            .map_err(fail)?;
        writer.flush().await.map_err(local)?;
        if let Some(hasher) = hasher
            && hasher.finalize()[..] != info.sha256[..]
        {
            return Err(ClientError::Protocol(
                "the backup's bytes do not match its sha-256".into(),
            ));
        }
        Ok(info)
    }
}

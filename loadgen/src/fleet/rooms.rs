//! Creating the rooms of a run (a group per room, or a private chat per pair) and waiting until
//! every member connection knows its room, so that no message is sent to a connection that
//! could not yet place it.

use std::sync::Arc;
use std::time::Duration;

use chatproto::pb;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Fleet;
use crate::error::LoadgenError;
use crate::progress::Progress;
use crate::topology::Topology;

/// Room creations in flight at once.
const IN_FLIGHT: usize = 16;
/// How long members may take to learn their room.
const ROOM_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates one chat per room and returns the chat ids in room order. Rooms of two become
/// private chats (reused if the pair already has one); larger rooms become new groups named
/// after the run.
pub async fn create_rooms(
    fleet: &Fleet,
    topology: &Topology,
    private: bool,
    run_id: u64,
    progress: Progress,
) -> Result<Vec<u64>, LoadgenError> {
    let bar = progress.counter(u64::from(topology.rooms()), "rooms");
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    for room in 0..topology.rooms() {
        let members = topology.members(room);
        let owner = members.start;
        let others: Vec<u64> = members
            .clone()
            .skip(1)
            .filter_map(|u| fleet.users.get(u as usize).map(|fu| fu.user_id))
            .collect();
        let Some(conn) = fleet.conn_for(owner, 0) else {
            return Err(LoadgenError::Setup(format!(
                "room {room}: its owner has no connection"
            )));
        };
        let client = conn.client.clone();
        let permit = limit.clone().acquire_owned().await.ok();
        set.spawn(async move {
            let result = if private {
                match others.first() {
                    Some(&peer) => client.create_private_chat(peer).await,
                    None => {
                        return (room, Err("a private chat needs two users".to_owned()));
                    }
                }
            } else {
                client
                    .create_group(pb::CreateGroup {
                        kind: pb::ChatKind::Group as i32,
                        title: format!("loadgen {run_id:016x} room {room}"),
                        description: String::new(),
                        member_ids: others,
                    })
                    .await
            };
            drop(permit);
            (room, result.map(|chat| chat.id).map_err(|e| e.to_string()))
        });
    }
    let mut ids = vec![0u64; topology.rooms() as usize];
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        bar.inc(1);
        match joined {
            Ok((room, Ok(id))) => ids[room as usize] = id,
            Ok((room, Err(e))) => {
                first_error.get_or_insert(format!("room {room}: {e}"));
            }
            Err(e) => {
                first_error.get_or_insert(format!("room task failed: {e}"));
            }
        }
    }
    bar.finish_and_clear();
    match first_error {
        Some(e) => Err(LoadgenError::Setup(format!("creating rooms: {e}"))),
        None => Ok(ids),
    }
}

/// Waits until every connection's session has a cursor for its room's chat.
pub async fn wait_for_rooms(
    fleet: &Fleet,
    topology: &Topology,
    progress: Progress,
) -> Result<(), LoadgenError> {
    let spinner = progress.spinner("joining");
    let deadline = tokio::time::Instant::now() + ROOM_TIMEOUT;
    let mut pending: Vec<usize> = (0..fleet.conns.len()).collect();
    loop {
        let mut still = Vec::new();
        for index in pending {
            let conn = &fleet.conns[index];
            let chat = topology.chat_id(topology.room_of(conn.user));
            let known = match conn.client.cursors().await {
                Ok(cursors) => cursors.iter().any(|c| c.chat_id == chat),
                Err(_) => false,
            };
            if !known {
                still.push(index);
            }
        }
        pending = still;
        if pending.is_empty() {
            spinner.finish_and_clear();
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            spinner.finish_and_clear();
            return Err(LoadgenError::Setup(format!(
                "{} connections did not learn their room within {ROOM_TIMEOUT:?}",
                pending.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

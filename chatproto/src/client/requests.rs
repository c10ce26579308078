//! A typed method for every request kind of chat/1, generated from the request table
//! ([`crate::request`]); the ones that change the client's authentication state are in
//! `auth.rs`, and a few kinds have hand-written conveniences below.
//!
//! Each takes the request message and returns the specific answer; an answer of another kind is
//! a [`ClientError::Protocol`]. Whether a request is repeated after a lost connection is the
//! table's `repeat` (reads, writes that set absolute state, and SendMessage, idempotent by
//! `client_msg_id`).

use super::{Client, ClientError, LinkState};
use crate::io::encode_datagram;
use crate::pb;
use crate::request::RequestMessage;

pub(crate) fn unexpected(request: &str, got: &str) -> ClientError {
    ClientError::Protocol(format!("{request} answered with {got}"))
}

/// The typed answer of an `R` request, or a protocol error naming what came instead.
pub(crate) fn answer<R: RequestMessage>(
    result: pb::response::Result,
) -> Result<R::Answer, ClientError> {
    R::answer(result).map_err(|got| unexpected(R::NAME, got))
}

/// One `async fn` per request kind of the table.
macro_rules! typed_methods {
    ($({ name: $name:ident, variant: $variant:ident, message: $message:ident, doc: $doc:literal })*) => {
        impl Client {
            $( typed_method!($name, $message, $doc); )*
        }
    };
}

/// The method of one kind; the kinds with a hand-written method (Hello is the dialer's, the
/// authentication ones are in `auth.rs`, the rest below) get none here.
macro_rules! typed_method {
    (hello, $($_:tt)*) => {};
    (register, $($_:tt)*) => {};
    (login, $($_:tt)*) => {};
    (refresh, $($_:tt)*) => {};
    (authenticate, $($_:tt)*) => {};
    (logout, $($_:tt)*) => {};
    (create_private_chat, $($_:tt)*) => {};
    (send_message, $($_:tt)*) => {};
    (send_typing, $($_:tt)*) => {};
    // Its answer is followed by raw bytes: `download_to_writer`, `download_to_path`, `file_url`.
    (download_file, $($_:tt)*) => {};
    // The same: `admin_backup_to_writer`.
    (admin_backup, $($_:tt)*) => {};
    ($name:ident, $message:ident, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            &self,
            req: pb::$message,
        ) -> Result<<pb::$message as RequestMessage>::Answer, ClientError> {
            self.request(req).await
        }
    };
}

for_each_request!(typed_methods);

impl Client {
    /// Opens (creating on first use) the private chat with `user_id`; asking again returns the
    /// same chat.
    pub async fn create_private_chat(&self, user_id: u64) -> Result<pb::Chat, ClientError> {
        self.request(pb::CreatePrivateChat { user_id }).await
    }

    /// Sends a message. An empty `client_msg_id` is replaced by a random one; the id makes the
    /// send idempotent, so it is repeated after a lost connection without creating a duplicate.
    pub async fn send_message(&self, mut req: pb::SendMessage) -> Result<pb::Message, ClientError> {
        if req.client_msg_id.is_empty() {
            req.client_msg_id = new_client_msg_id();
        }
        self.request(req).await
    }

    /// Sends a text message.
    pub async fn send_text(&self, chat_id: u64, text: &str) -> Result<pb::Message, ClientError> {
        self.send_message(pb::SendMessage {
            chat_id,
            kind: pb::MessageKind::Text as i32,
            text: text.into(),
            ..Default::default()
        })
        .await
    }

    /// Says "typing" in a chat: as a datagram when the connection negotiated datagrams, else
    /// with the SendTyping request.
    pub async fn send_typing(&self, chat_id: u64) -> Result<(), ClientError> {
        let link = match &*self.shared.link.borrow() {
            LinkState::Up(link) if link.datagrams => Some(link.clone()),
            _ => None,
        };
        if let Some(link) = link {
            let datagram = pb::Datagram {
                kind: Some(pb::datagram::Kind::Typing(pb::Typing {
                    chat_id,
                    ..Default::default()
                })),
            };
            match link.conn.send_datagram(encode_datagram(&datagram)) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "typing datagram not sent, using a request"),
            }
        }
        // A lost typing indicator does not matter: never repeated.
        self.request(pb::SendTyping { chat_id }).await.map(|_| ())
    }
}

/// A random 128-bit id in hex: 32 characters of `[0-9a-f]`, within SendMessage's rules.
pub fn new_client_msg_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_msg_ids_are_valid_and_distinct() {
        let a = super::new_client_msg_id();
        let b = super::new_client_msg_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

//! The request table: what every request kind of chat/1 is, declared once.
//!
//! The facts come from the annotations on `Request.kind` in `spec/chat.proto` (its name, its
//! typed answer, who may send it, whether it may be repeated); `build.rs` turns them into
//! [`RequestMessage`] impls for every request message, methods on
//! [`Kind`](crate::pb::request::Kind), [`NAMES`] and the
//! [`for_each_request!`](crate::for_each_request) macro. A new request kind is one line in the
//! .proto: the server's dispatch and the SDK's typed methods follow from it.

/// Who may send a request kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Only as the connection's first request (Hello).
    First,
    /// Any connection after Hello, authenticated or not: the requests that open a session.
    Anyone,
    /// An authenticated user.
    User,
}

/// Whether a request may be sent again after an unknown outcome (the connection was lost before
/// the answer), protocol.md 6.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads, and writes that converge to the same state (or carry an idempotency key).
    Safe,
    /// Doing it twice could do it twice.
    Never,
}

/// A request message (`pb::SendMessage`, ...) with the facts of its kind.
pub trait RequestMessage: Sized {
    /// The message a success answers with.
    type Answer;
    /// The kind's name in the .proto, e.g. `send_message`.
    const NAME: &'static str;
    /// Who may send it.
    const CALLER: Caller;
    /// Whether it may be repeated after an unknown outcome.
    const REPEAT: Repeat;
    /// Wraps the message as a `Request.kind`.
    fn into_kind(self) -> crate::pb::request::Kind;
    /// The typed answer in a response result, or the name of the result when it is of another
    /// kind.
    fn answer(result: crate::pb::response::Result) -> Result<Self::Answer, &'static str>;
}

include!(concat!(env!("OUT_DIR"), "/requests.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn the_table_carries_the_proto_annotations() {
        assert_eq!(NAMES.first(), Some(&"hello"));
        assert!(NAMES.contains(&"admin_revoke_sessions"));
        assert_eq!(pb::Hello::CALLER, Caller::First);
        assert_eq!(pb::Login::CALLER, Caller::Anyone);
        assert_eq!(pb::GetMe::CALLER, Caller::User);
        assert_eq!(pb::SendMessage::REPEAT, Repeat::Safe);
        assert_eq!(pb::CreateGroup::REPEAT, Repeat::Never);
        let kind = pb::GetHistory::default().into_kind();
        assert_eq!(kind.name(), "get_history");
        assert_eq!(kind.repeat(), Repeat::Safe);
        let ok = pb::response::Result::Ok(pb::Ok {});
        assert!(pb::Logout::answer(ok.clone()).is_ok());
        assert_eq!(pb::GetMe::answer(ok), Err("ok"));
    }

    #[test]
    fn every_kind_is_listed_once_with_its_own_name() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        macro_rules! names_of {
            ($({ name: $name:ident, variant: $v:ident, message: $m:ident, doc: $doc:literal })*) => {
                [$((stringify!($name), <pb::$m as RequestMessage>::NAME, $doc)),*]
            };
        }
        for (name, declared, doc) in for_each_request!(names_of) {
            assert_eq!(name, declared);
            assert!(!doc.is_empty(), "{name} has no comment in chat.proto");
        }
    }

    #[test]
    fn the_spec_lists_exactly_the_early_safe_kinds() {
        macro_rules! early_of {
            ($({ name: $name:ident, variant: $v:ident, message: $m:ident, doc: $doc:literal })*) => {
                [$((stringify!($name), pb::$m::default().into_kind().early_safe())),*]
            };
        }
        let mut table: Vec<&str> = for_each_request!(early_of)
            .into_iter()
            .filter_map(|(name, early)| early.then_some(name))
            .collect();
        // Spec 2.5 names them in backticks, up to the pointer to the annotations.
        let spec = include_str!("../../spec/protocol.md");
        let listed = spec
            .split("- **Early-safe requests.**")
            .nth(1)
            .and_then(|rest| rest.split("(the `early: safe`").next())
            .expect("spec 2.5 lists the early-safe requests");
        let mut names: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        table.sort_unstable();
        names.sort_unstable();
        assert_eq!(names, table);
        assert!(!pb::Refresh::default().into_kind().early_safe());
    }
}

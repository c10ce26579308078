//! `@username` mentions in message text.
//!
//! A mention is `@` followed by a run of username characters (`[A-Za-z0-9_.]`, compared without
//! case), where the `@` starts the text or follows a character that cannot be part of a username
//! (so `mail@example.com` mentions nobody). The run is the username when it is 3-32 characters
//! long. A run that ends in dots is also tried without them, because "thanks @bob." ends a
//! sentence; the exact run wins when both name a user. Only users that exist and are not deleted
//! count; each is recorded once, in order of first mention.

use crate::store::{Store, StoreResult};

/// Distinct mention tokens resolved per message, at most. A text of 4096 characters could name
/// ~800 users; resolving each costs a lookup, so the rest are ignored (they stay plain text).
pub const MAX_MENTIONS: usize = 50;

const MIN_USERNAME: usize = 3;
const MAX_USERNAME: usize = 32;

/// One `@token` found in a text: the lowercase username candidates, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionToken {
    /// The candidates to look up in order (the exact run, then the run without trailing dots).
    pub candidates: Vec<String>,
}

fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn valid_length(name: &str) -> bool {
    (MIN_USERNAME..=MAX_USERNAME).contains(&name.len())
}

/// The distinct mention tokens of `text`, in order of first appearance, at most [`MAX_MENTIONS`].
pub fn parse_mentions(text: &str) -> Vec<MentionToken> {
    let mut tokens: Vec<MentionToken> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let starts = c == '@' && !prev.is_some_and(is_username_char);
        prev = Some(c);
        if !starts {
            continue;
        }
        let start = at + 1;
        let mut end = start;
        while let Some(&(i, next)) = chars.peek() {
            if !is_username_char(next) {
                break;
            }
            end = i + next.len_utf8();
            prev = Some(next);
            chars.next();
        }
        let run = text[start..end].to_ascii_lowercase();
        let mut candidates = Vec::with_capacity(2);
        if valid_length(&run) {
            candidates.push(run.clone());
        }
        let trimmed = run.trim_end_matches('.');
        if trimmed.len() != run.len() && valid_length(trimmed) {
            candidates.push(trimmed.to_string());
        }
        if candidates.is_empty() || tokens.iter().any(|t| t.candidates == candidates) {
            continue;
        }
        tokens.push(MentionToken { candidates });
        if tokens.len() == MAX_MENTIONS {
            break;
        }
    }
    tokens
}

/// The ids of the existing, not deleted users mentioned in `text`, each once, in order.
pub async fn resolve_mentions(store: &dyn Store, text: &str) -> StoreResult<Vec<u64>> {
    if !text.contains('@') {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for token in parse_mentions(text) {
        for candidate in &token.candidates {
            if let Some(user) = store.user_by_username(candidate).await? {
                if !user.deleted && !ids.contains(&user.id) {
                    ids.push(user.id);
                }
                break;
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<Vec<String>> {
        parse_mentions(text)
            .into_iter()
            .map(|t| t.candidates)
            .collect()
    }

    fn one(name: &str) -> Vec<String> {
        vec![name.to_string()]
    }

    #[test]
    fn finds_mentions_case_insensitively_in_order() {
        assert_eq!(
            names("@Alice hi @bob_2 and @ALICE"),
            vec![one("alice"), one("bob_2")]
        );
    }

    #[test]
    fn email_addresses_and_words_are_not_mentions() {
        assert!(names("write to mail@example.com or x@yz_q").is_empty());
        assert!(names("no mentions here").is_empty());
    }

    #[test]
    fn punctuation_ends_a_mention() {
        assert_eq!(
            names("(@carol), @dave! @erin?"),
            vec![one("carol"), one("dave"), one("erin")]
        );
    }

    #[test]
    fn trailing_dots_are_tried_both_ways() {
        assert_eq!(
            names("thanks @bob."),
            vec![vec!["bob.".to_string(), "bob".to_string()]]
        );
        assert_eq!(names("@a.b.c"), vec![one("a.b.c")]);
    }

    #[test]
    fn length_rules_apply() {
        assert!(names("@ab @").is_empty());
        let long = "x".repeat(33);
        assert!(names(&format!("@{long}")).is_empty());
        assert_eq!(
            names(&format!("@{}", "y".repeat(32))),
            vec![one(&"y".repeat(32))]
        );
        // 33 characters only because of a final dot: the trimmed form is a username.
        let dotted = format!("@{}.", "z".repeat(32));
        assert_eq!(names(&dotted), vec![one(&"z".repeat(32))]);
    }

    #[test]
    fn non_ascii_neighbours_do_not_panic_or_join() {
        // "zo" is cut short by the "ë" and is too short to be a username.
        assert!(names("héllo @zoë").is_empty());
        assert_eq!(names("日本@kenji語"), vec![one("kenji")]);
        assert_eq!(names("@@frank"), vec![one("frank")]);
    }

    #[test]
    fn at_most_max_mentions_are_kept() {
        let text: String = (0..MAX_MENTIONS + 10)
            .map(|i| format!("@user{i:03} "))
            .collect();
        assert_eq!(parse_mentions(&text).len(), MAX_MENTIONS);
    }
}

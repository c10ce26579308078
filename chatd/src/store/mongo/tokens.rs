//! Words for search, folded the way the SQLite backend's FTS5 index folds them (`unicode61`
//! tokenizer with `remove_diacritics 2`), so both backends find the same messages:
//! - a token is a maximal run of letters and digits; everything else separates tokens;
//! - tokens are lowercased and Latin letters lose their diacritics ("Café" → "cafe").
//!
//! A query is whitespace-separated words. Each word is a phrase: its tokens must appear in a
//! message consecutively and in order; the last token of the last word matches as a prefix; every
//! word must match. Words without a letter or digit are dropped; a query of only such words
//! matches nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Latin letters with diacritics (every code point in U+00C0..U+024F and U+1E00..U+1EFF whose
/// canonical decomposition is an ASCII letter plus combining marks) ...
const FOLD_FROM: &str = concat!(
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíî",
    "ïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜ",
    "ĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő",
    "ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽ",
    "žƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻ",
    "ȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ",
    "ȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣ",
    "ḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋ",
    "ṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳ",
    "ṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạ",
    "ẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉ",
    "ỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰự",
    "ỲỳỴỵỶỷỸỹ",
);
/// ... and the lowercase ASCII letter each one folds to, position by position.
const FOLD_TO: &str = concat!(
    "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiii",
    "inooooouuuuyyaaaaaaccccccccddeeeeeeeeeeg",
    "ggggggghhiiiiiiiiijjkkllllllnnnnnnoooooo",
    "rrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzz",
    "zoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaa",
    "aaaaeeeeiiiioooorrrruuuusstthhaaeeoooooo",
    "ooyyaabbbbbbccddddddddddeeeeeeeeeeffgghh",
    "hhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnn",
    "oooooooopppprrrrrrrrssssssssssttttttttuu",
    "uuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaa",
    "aaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeii",
    "iioooooooooooooooooooooooouuuuuuuuuuuuuu",
    "yyyyyyyy",
);

fn fold_table() -> &'static HashMap<char, char> {
    static TABLE: OnceLock<HashMap<char, char>> = OnceLock::new();
    TABLE.get_or_init(|| FOLD_FROM.chars().zip(FOLD_TO.chars()).collect())
}

/// A token character folded: lowercase, without diacritics. Characters whose lowercase form is
/// several characters keep them all.
fn fold_into(c: char, out: &mut String) {
    let table = fold_table();
    for lower in c.to_lowercase() {
        out.push(table.get(&lower).copied().unwrap_or(lower));
    }
}

/// The tokens of `text` in order (with repetitions).
pub(super) fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            fold_into(c, &mut current);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The distinct tokens of `text`, sorted: what a message stores for its index.
pub(super) fn index_tokens(text: &str) -> Vec<String> {
    let mut tokens = tokenize(text);
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// A parsed search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Query {
    /// One token list per word, each non-empty; the last token of the last one is a prefix.
    phrases: Vec<Vec<String>>,
}

impl Query {
    /// Parses `text`; `None` when it has no searchable word.
    pub fn parse(text: &str) -> Option<Query> {
        let phrases: Vec<Vec<String>> = text
            .split_whitespace()
            .map(tokenize)
            .filter(|tokens| !tokens.is_empty())
            .collect();
        if phrases.is_empty() {
            None
        } else {
            Some(Query { phrases })
        }
    }

    /// Every token that must appear whole, deduplicated.
    pub fn whole_tokens(&self) -> Vec<String> {
        let mut whole: Vec<String> = self.phrases.iter().flatten().cloned().collect();
        whole.pop(); // the prefix
        whole.sort_unstable();
        whole.dedup();
        whole
    }

    /// The token that must start some token of a match.
    pub fn prefix(&self) -> &str {
        self.phrases
            .last()
            .and_then(|p| p.last())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// True when `text` matches: every phrase occurs in it, the last one with a prefix match on
    /// its last token.
    pub fn matches(&self, text: &str) -> bool {
        let tokens = tokenize(text);
        let last = self.phrases.len() - 1;
        self.phrases.iter().enumerate().all(|(i, phrase)| {
            tokens.windows(phrase.len()).any(|window| {
                window
                    .iter()
                    .zip(phrase)
                    .enumerate()
                    .all(|(j, (have, want))| {
                        if i == last && j == phrase.len() - 1 {
                            have.starts_with(want.as_str())
                        } else {
                            have == want
                        }
                    })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_folded_runs_of_letters_and_digits() {
        assert_eq!(
            tokenize("Hello, wörld! Ça va? x2_y"),
            ["hello", "world", "ca", "va", "x2", "y"]
        );
        assert_eq!(tokenize("ÅNGSTRÖM façade"), ["angstrom", "facade"]);
        assert_eq!(tokenize("Привет мир"), ["привет", "мир"]);
        assert_eq!(index_tokens("b a b"), ["a", "b"]);
        assert!(tokenize(" -- ** ").is_empty());
    }

    #[test]
    fn fold_table_is_aligned() {
        assert_eq!(FOLD_FROM.chars().count(), FOLD_TO.chars().count());
        assert!(FOLD_TO.chars().all(|c| c.is_ascii_lowercase()));
    }

    #[test]
    fn queries_need_every_word_and_prefix_the_last() {
        let q = Query::parse("hello wor").unwrap();
        assert_eq!(q.whole_tokens(), ["hello"]);
        assert_eq!(q.prefix(), "wor");
        assert!(q.matches("Hello world"));
        assert!(q.matches("working, hello"));
        assert!(!q.matches("hello there"));
        assert!(!q.matches("helloo world"));
        assert_eq!(Query::parse("  -- ** "), None);
        assert_eq!(Query::parse(""), None);
    }

    #[test]
    fn a_word_with_several_tokens_is_a_phrase() {
        let q = Query::parse("e-mail").unwrap();
        assert!(q.matches("send an e-mail"));
        assert!(q.matches("e mailbox"));
        assert!(!q.matches("mail e"));
        assert!(Query::parse("cafe").unwrap().matches("au Café"));
    }
}

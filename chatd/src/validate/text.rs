//! The character policy shared by every free-text field (names, titles, bios, message text).
//!
//! What is rejected, and why:
//! - Control characters (general category Cc): C0, DEL and C1. Multi-line fields (bio,
//!   description, message text) allow `\n` and `\t`; `\r` is rejected so that line breaks have
//!   one form everywhere.
//! - Line and paragraph separators U+2028 and U+2029: invisible line breaks that clients render
//!   inconsistently; `\n` is the one line break.
//! - Format characters (general category Cf), because they are invisible and are the tools of
//!   spoofing: bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, the
//!   "Trojan source" reordering), zero-width space, word joiner, BOM, soft hyphen, interlinear
//!   annotation and the like. Allowed exceptions, each needed by real text:
//!   - U+200C ZWNJ and U+200D ZWJ (Persian and Indic shaping, emoji ZWJ sequences);
//!   - U+200E LRM, U+200F RLM and U+061C ALM (directional marks: they do not nest or override,
//!     and mixed right-to-left text needs them);
//!   - tag characters U+E0020–U+E007F only inside an emoji tag sequence: right after U+1F3F4
//!     (waving black flag) or another tag character, ended by U+E007F CANCEL TAG (subdivision
//!     flags such as England's). Free-floating tags could smuggle invisible text.
//!
//! Everything else is allowed, including combining marks, private-use characters and emoji.
//! Lengths are counted in Unicode scalar values (Rust `char`s), the unit of
//! `Limits.max_text_chars`.

/// Why a character was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// A control character (Cc) not allowed in this field.
    Control(char),
    /// U+2028 or U+2029.
    Separator(char),
    /// An invisible format character (Cf) outside the allowed exceptions.
    Format(char),
    /// A tag character outside an emoji tag sequence, or a tag sequence left open.
    StrayTag,
}

impl Rejected {
    /// The human-readable message for a field error.
    pub(crate) fn message(self) -> String {
        match self {
            Rejected::Control(c) => format!("contains the control character U+{:04X}", c as u32),
            Rejected::Separator(c) => {
                format!("contains the line separator U+{:04X}; use \\n", c as u32)
            }
            Rejected::Format(c) => {
                format!("contains the invisible format character U+{:04X}", c as u32)
            }
            Rejected::StrayTag => "contains tag characters outside an emoji tag sequence".into(),
        }
    }
}

/// Whether `\n` and `\t` are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    /// Names, titles, queries: no line breaks or tabs.
    Single,
    /// Bios, descriptions, message text: `\n` and `\t` allowed.
    Multi,
}

const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

pub(crate) fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007F}').contains(&c)
}

/// The Cf (format) code points of Unicode 15, as inclusive ranges. Tags (U+E0020–U+E007F) are
/// Cf too but are handled by the tag-sequence rule.
const FORMAT_RANGES: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
];

/// The direction marks (LRM, RLM, ALM): format characters free text may need (see the module
/// doc), and names need not.
pub(crate) const DIRECTION_MARKS: [char; 3] = ['\u{200E}', '\u{200F}', '\u{061C}'];

/// The joiners (ZWNJ, ZWJ): format characters that scripts and emoji sequences need.
const JOINERS: [char; 2] = ['\u{200C}', '\u{200D}'];

/// Format characters that real text needs (see the module doc).
fn allowed_format(c: char) -> bool {
    JOINERS.contains(&c) || DIRECTION_MARKS.contains(&c)
}

/// Whether `c` is a format character (Cf) other than a tag character.
pub(crate) fn is_format(c: char) -> bool {
    FORMAT_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Checks every character of `s` against the policy and returns the length in scalar values.
pub(crate) fn check_chars(s: &str, lines: Lines) -> Result<usize, Rejected> {
    let mut count = 0usize;
    // Whether the previous character may be followed by a tag character: U+1F3F4 or a tag.
    let mut tag_may_follow = false;
    // Whether we are inside a tag sequence that still needs its CANCEL TAG.
    let mut in_tags = false;
    for c in s.chars() {
        count += 1;
        if is_tag(c) {
            if !tag_may_follow {
                return Err(Rejected::StrayTag);
            }
            if c == CANCEL_TAG {
                // CANCEL TAG right after the flag (no tag spec) is not a sequence either.
                if !in_tags {
                    return Err(Rejected::StrayTag);
                }
                in_tags = false;
                tag_may_follow = false;
            } else {
                in_tags = true;
                tag_may_follow = true;
            }
            continue;
        }
        if in_tags {
            return Err(Rejected::StrayTag);
        }
        tag_may_follow = c == BLACK_FLAG;
        if c.is_control() {
            let allowed = lines == Lines::Multi && (c == '\n' || c == '\t');
            if !allowed {
                return Err(Rejected::Control(c));
            }
        } else if c == '\u{2028}' || c == '\u{2029}' {
            return Err(Rejected::Separator(c));
        } else if is_format(c) && !allowed_format(c) {
            return Err(Rejected::Format(c));
        }
    }
    if in_tags {
        return Err(Rejected::StrayTag);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_international_text_passes() {
        for s in [
            "hello",
            "Grüße, Jürgen",
            "e\u{0301}cole",       // combining acute accent
            "שלום עולם",           // Hebrew, right-to-left
            "مرحبا\u{200F} world", // RLM in mixed text
            "می\u{200C}خواهم",     // ZWNJ in Persian
            "👩\u{200D}💻",        // ZWJ emoji sequence
            "\u{E000} private use",
            "",
        ] {
            assert_eq!(
                check_chars(s, Lines::Single),
                Ok(s.chars().count()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn counts_scalar_values_not_bytes_or_graphemes() {
        assert_eq!(check_chars("e\u{0301}", Lines::Single), Ok(2));
        assert_eq!(check_chars("日本", Lines::Single), Ok(2));
        assert_eq!(check_chars("👍🏽", Lines::Single), Ok(2));
    }

    #[test]
    fn line_breaks_and_tabs_only_in_multi_line_fields() {
        assert_eq!(check_chars("a\nb\tc", Lines::Multi), Ok(5));
        assert_eq!(
            check_chars("a\nb", Lines::Single),
            Err(Rejected::Control('\n'))
        );
        assert_eq!(
            check_chars("a\tb", Lines::Single),
            Err(Rejected::Control('\t'))
        );
        assert_eq!(
            check_chars("a\r\nb", Lines::Multi),
            Err(Rejected::Control('\r'))
        );
    }

    #[test]
    fn controls_separators_and_format_characters_are_rejected() {
        let cases: &[(&str, Rejected)] = &[
            ("a\u{0}b", Rejected::Control('\u{0}')),
            ("a\u{7F}", Rejected::Control('\u{7F}')),
            ("a\u{85}", Rejected::Control('\u{85}')), // C1 NEL
            ("a\u{2028}b", Rejected::Separator('\u{2028}')),
            ("a\u{2029}b", Rejected::Separator('\u{2029}')),
            ("abc\u{202E}cba", Rejected::Format('\u{202E}')), // RIGHT-TO-LEFT OVERRIDE
            ("a\u{202A}b", Rejected::Format('\u{202A}')),
            ("a\u{2066}b", Rejected::Format('\u{2066}')), // LEFT-TO-RIGHT ISOLATE
            ("a\u{2069}b", Rejected::Format('\u{2069}')),
            ("a\u{200B}b", Rejected::Format('\u{200B}')), // zero-width space
            ("\u{FEFF}abc", Rejected::Format('\u{FEFF}')), // BOM
            ("a\u{00AD}b", Rejected::Format('\u{00AD}')), // soft hyphen
            ("a\u{2060}b", Rejected::Format('\u{2060}')), // word joiner
            ("a\u{FFF9}b", Rejected::Format('\u{FFF9}')),
            ("a\u{E0001}b", Rejected::Format('\u{E0001}')), // LANGUAGE TAG
        ];
        for (s, want) in cases {
            assert_eq!(check_chars(s, Lines::Multi), Err(*want), "{s:?}");
        }
    }

    #[test]
    fn tag_characters_only_inside_emoji_tag_sequences() {
        let england = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert_eq!(check_chars(england, Lines::Single), Ok(7));
        assert_eq!(
            check_chars(&format!("go {england}!"), Lines::Single),
            Ok(11)
        );
        for bad in [
            "hidden\u{E0068}\u{E0069}",             // tags after a letter
            "\u{1F3F4}\u{E0067}\u{E0062}",          // never cancelled
            "\u{1F3F4}\u{E0067}x\u{E007F}",         // interrupted
            "\u{1F3F4}\u{E007F}",                   // cancel without tag spec
            "\u{E007F}",                            // lone cancel tag
            "\u{1F3F4}\u{E0067}\u{E007F}\u{E0067}", // tag after the sequence ended
        ] {
            assert_eq!(
                check_chars(bad, Lines::Multi),
                Err(Rejected::StrayTag),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_code_point() {
        assert_eq!(
            Rejected::Format('\u{202E}').message(),
            "contains the invisible format character U+202E"
        );
        assert_eq!(
            Rejected::Control('\u{1}').message(),
            "contains the control character U+0001"
        );
    }
}

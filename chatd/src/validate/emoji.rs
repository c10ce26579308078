//! Reaction emoji: one extended grapheme cluster made only of emoji code points.
//!
//! The accepted code points, as ranges (from Unicode's emoji-data.txt):
//! - `Extended_Pictographic` ([`EXTENDED_PICTOGRAPHIC`]); the property deliberately covers
//!   reserved code points in the emoji blocks, so emoji added by later Unicode versions pass;
//! - regional indicators U+1F1E6–U+1F1FF, only as a pair (a flag);
//! - keycap sequences: `0-9`, `#` or `*`, optionally U+FE0F, then U+20E3, and nothing else;
//! - inside a sequence: ZWJ U+200D, VS16 U+FE0F, skin-tone modifiers U+1F3FB–U+1F3FF and tag
//!   characters U+E0020–U+E007F (subdivision flags).
//!
//! Shape rules on top: the first code point is a base (pictographic, regional indicator, keycap
//! base or a lone skin-tone swatch), the whole is at most [`MAX_EMOJI_BYTES`] bytes and
//! segments into exactly one grapheme cluster (UAX #29, via `unicode-segmentation`), which is
//! what rejects two emoji side by side and a dangling ZWJ.

use super::text::is_tag;
use unicode_segmentation::UnicodeSegmentation;

/// Longest reaction emoji in UTF-8 bytes (the longest RGI sequences are about 35 bytes; family
/// ZWJ sequences with skin tones do not fit, which the protocol accepts).
pub const MAX_EMOJI_BYTES: usize = 32;

/// `Extended_Pictographic` (emoji-data.txt, Unicode 15.1) as inclusive ranges, sorted.
pub const EXTENDED_PICTOGRAPHIC: &[(u32, u32)] = &[
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
];

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';

fn is_extended_pictographic(c: char) -> bool {
    let cp = c as u32;
    EXTENDED_PICTOGRAPHIC
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_keycap_base(c: char) -> bool {
    c.is_ascii_digit() || c == '#' || c == '*'
}

/// Checks `s` and returns the reason it is not one reaction emoji.
pub(crate) fn check_emoji(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_EMOJI_BYTES {
        return Err("must be at most 32 bytes");
    }
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Err("must not be empty");
    };
    if is_keycap_base(first) {
        let rest: Vec<char> = chars.collect();
        return match rest.as_slice() {
            [KEYCAP] | [VS16, KEYCAP] => Ok(()),
            _ => Err("must be a single emoji"),
        };
    }
    if is_regional_indicator(first) {
        let rest: Vec<char> = chars.collect();
        return match rest.as_slice() {
            [second] if is_regional_indicator(*second) => Ok(()),
            _ => Err("a flag must be exactly two regional indicators"),
        };
    }
    if !is_extended_pictographic(first) && !is_skin_tone(first) {
        return Err("must be a single emoji");
    }
    let mut after_zwj = false;
    for c in chars {
        let allowed =
            is_extended_pictographic(c) || c == ZWJ || c == VS16 || is_skin_tone(c) || is_tag(c);
        if !allowed {
            return Err("must contain only emoji characters");
        }
        // A ZWJ joins two pictographs; anything else after it renders as a broken sequence.
        if after_zwj && !is_extended_pictographic(c) {
            return Err("a zero-width joiner must be followed by an emoji");
        }
        after_zwj = c == ZWJ;
    }
    if after_zwj {
        return Err("a zero-width joiner must be followed by an emoji");
    }
    if s.graphemes(true).nth(1).is_some() {
        return Err("must be a single emoji");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_sorted_and_disjoint() {
        for w in EXTENDED_PICTOGRAPHIC.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:x?}");
        }
    }

    #[test]
    fn accepts_single_emoji_of_every_shape() {
        for ok in [
            "👍",                                                              // plain
            "❤",                                                               // BMP pictograph
            "❤\u{FE0F}",                                                       // with VS16
            "©",                                                               // lowest ExtPict
            "👍🏽",                                                              // skin tone
            "🏽",                                                              // lone swatch
            "👩\u{200D}💻",                                                    // ZWJ sequence
            "🏳\u{FE0F}\u{200D}🌈",                                             // rainbow flag
            "🇫🇷",                                                              // regional pair
            "1\u{FE0F}\u{20E3}",                                               // keycap with VS16
            "#\u{20E3}",                                                       // keycap without
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}", // Scotland
            "🫠",                                                              // Unicode 14
            "\u{1FAE9}",                                                       // reserved, future
        ] {
            assert_eq!(check_emoji(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn rejects_non_emoji_and_malformed_sequences() {
        let cases: &[(&str, &str)] = &[
            ("", "must not be empty"),
            ("a", "must be a single emoji"),
            ("1", "must be a single emoji"),
            ("12", "must be a single emoji"),
            ("1\u{20E3}\u{20E3}", "must be a single emoji"),
            ("\u{200D}", "must be a single emoji"),
            ("\u{FE0F}", "must be a single emoji"),
            ("👍👍", "must be a single emoji"),
            (
                "👍\u{200D}",
                "a zero-width joiner must be followed by an emoji",
            ),
            (
                "👍\u{200D}\u{200D}👍",
                "a zero-width joiner must be followed by an emoji",
            ),
            (
                "👍\u{200D}\u{FE0F}",
                "a zero-width joiner must be followed by an emoji",
            ),
            ("👍a", "must contain only emoji characters"),
            ("👍\u{0301}", "must contain only emoji characters"),
            ("👍\u{202E}", "must contain only emoji characters"),
            ("🇫", "a flag must be exactly two regional indicators"),
            ("🇫🇷🇩🇪", "a flag must be exactly two regional indicators"),
            ("🇫👍", "a flag must be exactly two regional indicators"),
            ("→", "must be a single emoji"), // arrow U+2192 is not pictographic
        ];
        for (s, want) in cases {
            assert_eq!(check_emoji(s), Err(*want), "{s:?}");
        }
    }

    #[test]
    fn byte_limit_is_enforced_before_anything_else() {
        // Family with skin tones: 4 people, 3 ZWJ, 4 modifiers = 4*4 + 3*3 + 4*4 = 41 bytes.
        let family = "👩🏽\u{200D}👩🏽\u{200D}👧🏽\u{200D}👦🏽";
        assert!(family.len() > MAX_EMOJI_BYTES);
        assert_eq!(check_emoji(family), Err("must be at most 32 bytes"));
        let long = "👍".repeat(9);
        assert_eq!(check_emoji(&long), Err("must be at most 32 bytes"));
    }
}

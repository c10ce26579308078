//! Emoji for reactions: the picker's list and the `:shortcode:` names typed in the composer.

/// `(shortcode, emoji)`, in the order the reaction picker lists them (most used first).
pub const SHORTCODES: &[(&str, &str)] = &[
    ("thumbsup", "👍"),
    ("heart", "❤️"),
    ("joy", "😂"),
    ("tada", "🎉"),
    ("fire", "🔥"),
    ("eyes", "👀"),
    ("pray", "🙏"),
    ("clap", "👏"),
    ("smile", "😄"),
    ("thinking", "🤔"),
    ("cry", "😢"),
    ("rocket", "🚀"),
    ("ok_hand", "👌"),
    ("wave", "👋"),
    ("100", "💯"),
    ("thumbsdown", "👎"),
    ("check", "✅"),
    ("x", "❌"),
    ("star", "⭐"),
    ("party", "🥳"),
    ("sunglasses", "😎"),
    ("wink", "😉"),
    ("scream", "😱"),
    ("muscle", "💪"),
    ("coffee", "☕"),
    ("beer", "🍺"),
    ("pizza", "🍕"),
    ("sparkles", "✨"),
    ("skull", "💀"),
    ("upside_down", "🙃"),
];

/// Other names for the same emoji.
const ALIASES: &[(&str, &str)] = &[
    ("+1", "thumbsup"),
    ("-1", "thumbsdown"),
    ("like", "thumbsup"),
    ("love", "heart"),
    ("lol", "joy"),
    ("white_check_mark", "check"),
];

/// The emoji of a shortcode, with or without the colons (`:tada:`, `tada`).
pub fn from_shortcode(code: &str) -> Option<&'static str> {
    let name = code.trim().trim_matches(':');
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| target);
    SHORTCODES.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// An emoji given as a shortcode or as the emoji itself: the emoji, if it looks like one (not
/// plain text).
pub fn parse(input: &str) -> Option<String> {
    let input = input.trim();
    if let Some(e) = from_shortcode(input) {
        return Some(e.to_string());
    }
    let plain = input.is_ascii();
    (!input.is_empty() && !plain && input.len() <= 32).then(|| input.to_string())
}

/// Replaces every known `:shortcode:` in a text by its emoji.
pub fn expand(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(':') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find(':') {
            Some(end) if end > 0 && !after[..end].contains(char::is_whitespace) => {
                match from_shortcode(&after[..end]) {
                    Some(e) => {
                        out.push_str(e);
                        rest = &after[end + 1..];
                    }
                    None => {
                        out.push(':');
                        rest = after;
                    }
                }
            }
            _ => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcodes_and_aliases() {
        assert_eq!(from_shortcode(":tada:"), Some("🎉"));
        assert_eq!(from_shortcode("+1"), Some("👍"));
        assert_eq!(from_shortcode(":nope:"), None);
        assert_eq!(parse("🦀").as_deref(), Some("🦀"));
        assert_eq!(parse("word"), None);
        assert_eq!(parse(":fire:").as_deref(), Some("🔥"));
    }

    #[test]
    fn texts_expand_known_shortcodes_only() {
        assert_eq!(
            expand("nice :tada: at 10:30 :nope: ok"),
            "nice 🎉 at 10:30 :nope: ok"
        );
        assert_eq!(expand("::"), "::");
        assert_eq!(expand(":+1::fire:"), "👍🔥");
    }
}

//! The device name a client gives when it signs in, as the user's session list shows it.

/// The most characters a device name may have (chat/1, `login.device_name`).
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// "PROGRAM on HOST" (the host from /etc/hostname, else "this computer"), shortened with "…"
/// to [`MAX_DEVICE_NAME_CHARS`].
pub fn device_name(program: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this computer".into());
    shorten(&format!("{program} on {host}"))
}

fn shorten(name: &str) -> String {
    let one_line: String = name.chars().filter(|c| !c.is_control()).collect();
    if one_line.chars().count() <= MAX_DEVICE_NAME_CHARS {
        return one_line;
    }
    let mut s: String = one_line.chars().take(MAX_DEVICE_NAME_CHARS - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_protocol_limit() {
        assert!(device_name("chatctl").starts_with("chatctl on "));
        let long = shorten(&format!("chatctl on {}", "h".repeat(100)));
        assert_eq!(long.chars().count(), MAX_DEVICE_NAME_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(shorten("a\nb"), "ab");
    }
}

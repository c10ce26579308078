//! What a file is, from its bytes (magic numbers), never from its name or the client's word.

use chatproto::pb;

/// How many leading bytes [`detect`] looks at.
pub const SNIFF_BYTES: usize = 8192;

/// The longest media type: RFC 6838 caps the type and the subtype at 127 characters each.
pub const MAX_MIME_BYTES: usize = 127 + 1 + 127;

/// The media type of content whose type is not recognized.
pub const UNKNOWN_MIME: &str = "application/octet-stream";

/// The broad class of a content type, which the media message kinds are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An image.
    Image,
    /// A video.
    Video,
    /// Audio.
    Audio,
    /// Anything else.
    Other,
}

/// What the leading bytes of a content say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The media type, e.g. `image/png`; [`UNKNOWN_MIME`] when not recognized.
    pub mime: &'static str,
    /// Its class.
    pub class: Class,
}

/// Detects the type of a content from its first bytes (at most [`SNIFF_BYTES`] are needed).
pub fn detect(head: &[u8]) -> Detected {
    match infer::get(head) {
        Some(kind) => Detected {
            mime: kind.mime_type(),
            class: match kind.matcher_type() {
                infer::MatcherType::Image => Class::Image,
                infer::MatcherType::Video => Class::Video,
                infer::MatcherType::Audio => Class::Audio,
                _ => Class::Other,
            },
        },
        None => Detected {
            mime: UNKNOWN_MIME,
            class: Class::Other,
        },
    }
}

/// The class of a stored media type (as [`detect`] named it).
pub fn class_of(mime: &str) -> Class {
    match mime.split('/').next() {
        Some("image") => Class::Image,
        Some("video") => Class::Video,
        Some("audio") => Class::Audio,
        _ => Class::Other,
    }
}

/// Whether content of class `class` may be sent or uploaded as `kind`: images as IMAGE, videos
/// as VIDEO, audio as AUDIO or VOICE, anything as FILE. `Err` says what is wrong.
pub fn check_kind(kind: pb::MessageKind, class: Class, mime: &str) -> Result<(), String> {
    let (wanted, what) = match kind {
        pb::MessageKind::Image => (Class::Image, "an image"),
        pb::MessageKind::Video => (Class::Video, "a video"),
        pb::MessageKind::Audio | pb::MessageKind::Voice => (Class::Audio, "audio"),
        pb::MessageKind::File => return Ok(()),
        pb::MessageKind::Text | pb::MessageKind::Unspecified => {
            return Err("files are IMAGE, VIDEO, AUDIO, VOICE or FILE".into());
        }
    };
    if class == wanted {
        Ok(())
    } else {
        Err(format!("the content is not {what} (detected {mime})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_magic_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(detect(png).mime, "image/png");
        assert_eq!(detect(png).class, Class::Image);
        assert_eq!(detect(b"%PDF-1.7\n").mime, "application/pdf");
        assert_eq!(detect(b"%PDF-1.7\n").class, Class::Other);
        assert_eq!(detect(b"just some text").mime, UNKNOWN_MIME);
        assert_eq!(detect(b"").class, Class::Other);
    }

    #[test]
    fn kinds_are_checked_against_the_class() {
        assert!(check_kind(pb::MessageKind::Image, Class::Image, "image/png").is_ok());
        assert!(check_kind(pb::MessageKind::File, Class::Other, UNKNOWN_MIME).is_ok());
        assert!(check_kind(pb::MessageKind::Voice, Class::Audio, "audio/ogg").is_ok());
        let spoofed = check_kind(pb::MessageKind::Image, Class::Other, "application/pdf");
        assert_eq!(
            spoofed,
            Err("the content is not an image (detected application/pdf)".into())
        );
        assert!(check_kind(pb::MessageKind::Text, Class::Other, UNKNOWN_MIME).is_err());
        assert_eq!(class_of("video/mp4"), Class::Video);
        assert_eq!(class_of(UNKNOWN_MIME), Class::Other);
    }
}

//! Certificate fingerprints as clients pin them (`--pin`) and servers print them: the one parser
//! and formatter of both sides.
//!
//! The canonical form is the SHA-256 of the certificate's DER encoding as 64 lowercase hex
//! characters. [`parse_fingerprint`] also accepts uppercase and the colon-separated form
//! (`AB:CD:...`) that `openssl x509 -fingerprint -sha256` prints, with or without its
//! `sha256 Fingerprint=` prefix. Sans-IO: no dependencies beyond `sha2` and `hex`.

use sha2::{Digest as _, Sha256};

/// A SHA-256 certificate fingerprint.
pub type Fingerprint = [u8; 32];

/// Why a fingerprint text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// Not 32 bytes of hex, plain or colon-separated.
    #[error(
        "fingerprint must be 64 hex characters or 32 colon-separated hex pairs (sha-256), got {0:?}"
    )]
    Malformed(String),
}

/// The fingerprint of a DER-encoded certificate.
pub fn fingerprint_of_der(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// The canonical text form: 64 lowercase hex characters.
pub fn format_fingerprint(fp: &Fingerprint) -> String {
    hex::encode(fp)
}

/// Parses a fingerprint in any accepted form (see the module doc).
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint, FingerprintError> {
    let malformed = || FingerprintError::Malformed(text.chars().take(120).collect());
    let mut s = text.trim();
    // openssl prints "sha256 Fingerprint=AB:CD:..." (older versions "SHA256 Fingerprint=").
    if let Some((label, rest)) = s.split_once('=')
        && label.trim().eq_ignore_ascii_case("sha256 fingerprint")
    {
        s = rest.trim();
    }
    let compact: String = if s.contains(':') {
        let pairs: Vec<&str> = s.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return Err(malformed());
        }
        pairs.concat()
    } else {
        s.to_owned()
    };
    if compact.len() != 64 {
        return Err(malformed());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(&compact, &mut out).map_err(|_| malformed())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256("abc"), FIPS 180-2.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn canonical_form_is_lowercase_hex_of_sha256() {
        let fp = fingerprint_of_der(b"abc");
        assert_eq!(format_fingerprint(&fp), ABC);
    }

    #[test]
    fn accepted_forms_parse_to_the_same_bytes() {
        let want = fingerprint_of_der(b"abc");
        let colon_upper = ABC
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).expect("ascii").to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        for text in [
            ABC.to_owned(),
            ABC.to_uppercase(),
            format!("  {ABC}\n"),
            colon_upper.clone(),
            colon_upper.to_lowercase(),
            format!("sha256 Fingerprint={colon_upper}"),
            format!("SHA256 Fingerprint={colon_upper}"),
        ] {
            assert_eq!(parse_fingerprint(&text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn malformed_forms_are_rejected() {
        let colon = ABC
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).expect("ascii"))
            .collect::<Vec<_>>()
            .join(":");
        for bad in [
            String::new(),
            ABC[..62].to_owned(),
            format!("{ABC}00"),
            format!("{}zz", &ABC[..62]),
            colon[..colon.len() - 3].to_owned(),   // 31 pairs
            format!("{colon}:00"),                 // 33 pairs
            colon.replacen(':', "", 1),            // one pair of 4
            format!("md5 Fingerprint={colon}"),    // wrong label
            "sha1:".to_owned() + &"ab".repeat(20), // sha-1 length
        ] {
            assert!(parse_fingerprint(&bad).is_err(), "{bad:?}");
        }
    }
}

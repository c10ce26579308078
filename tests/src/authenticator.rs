//! An authenticator app for the suites: it takes the `otpauth://totp/` URI chatd hands out
//! (protocol.md 17.2) and computes codes as RFC 6238 and RFC 4226 say, written from the RFCs
//! and not from chatd's code, so a test that logs in with its codes checks chatd against them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A TOTP generator for one secret.
#[derive(Debug, Clone)]
pub struct Authenticator {
    secret: Vec<u8>,
    digits: u32,
    period: u64,
}

impl Authenticator {
    /// The generator an app would make from `uri`. Panics on a URI that is not one (a failed
    /// check of the server's answer).
    pub fn from_uri(uri: &str) -> Authenticator {
        let rest = uri
            .strip_prefix("otpauth://totp/")
            .unwrap_or_else(|| panic!("not an otpauth TOTP URI: {uri}"));
        let (_label, query) = rest.split_once('?').expect("the URI has parameters");
        let param = |key: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("the URI has no {key}: {uri}"))
        };
        assert_eq!(param("algorithm"), "SHA1", "{uri}");
        Authenticator {
            secret: base32_decode(param("secret")),
            digits: param("digits").parse().expect("digits"),
            period: param("period").parse().expect("period"),
        }
    }

    /// The secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The step now.
    pub fn step_now(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        now.as_secs() / self.period
    }

    /// The code of `step`, zero-padded.
    pub fn code(&self, step: u64) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.secret);
        let mac = ring::hmac::sign(&key, &step.to_be_bytes());
        let mac = mac.as_ref();
        let offset = usize::from(mac[19] & 0x0f);
        let binary = (u32::from(mac[offset]) & 0x7f) << 24
            | u32::from(mac[offset + 1]) << 16
            | u32::from(mac[offset + 2]) << 8
            | u32::from(mac[offset + 3]);
        let code = binary % 10u32.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// A code of the right form that is none of the codes of the steps around now.
    pub fn wrong_code(&self) -> String {
        let now = self.step_now();
        let near: Vec<String> = (now - 2..=now + 2).map(|s| self.code(s)).collect();
        (0..)
            .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
            .find(|c| !near.contains(c))
            .expect("a code that is not near")
    }

    /// Waits, when less than `left` is left of the current step, for the next step, and
    /// returns the step then: a test that uses the codes of that step and the one either side
    /// in increasing order, the first within `left`, stays within the server's window.
    pub async fn fresh_step(&self, left: Duration) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        let into = Duration::from_millis(
            u64::try_from(now.as_millis()).expect("ms") % (self.period * 1000),
        );
        let remaining = Duration::from_secs(self.period).saturating_sub(into);
        if remaining < left {
            tokio::time::sleep(remaining + Duration::from_millis(50)).await;
        }
        self.step_now()
    }
}

/// Two-factor login turned on through the SDK, as a user does it with an app.
pub struct TurnedOn {
    /// The app holding the secret.
    pub app: Authenticator,
    /// A step with at least 10 s left when it was turned on: the code of the step before it
    /// confirmed the secret (and is spent), the codes of `step` and `step + 1` are unused.
    pub step: u64,
    /// The recovery codes the server showed.
    pub recovery_codes: Vec<String>,
}

/// Turns on two-factor login for the user signed in on `client` (whose password is
/// `password`): begin, add the key to an app, confirm with a code of it.
pub async fn turn_on(client: &chatproto::client::Client, password: &str) -> TurnedOn {
    let setup = client
        .begin_two_factor(chatproto::pb::BeginTwoFactor {
            password: password.into(),
        })
        .await
        .expect("begin two-factor login");
    let app = Authenticator::from_uri(&setup.otpauth_uri);
    let step = app.fresh_step(Duration::from_secs(10)).await;
    let recovery_codes = client
        .enable_two_factor(chatproto::pb::EnableTwoFactor {
            code: app.code(step - 1),
        })
        .await
        .expect("enable two-factor login")
        .codes;
    TurnedOn {
        app,
        step,
        recovery_codes,
    }
}

/// RFC 4648 base32, padding optional, upper or lower case.
fn base32_decode(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            other => panic!("not base32: {:?}", char::from(other)),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc_6238() {
        let app = Authenticator::from_uri(
            "otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=x&algorithm=SHA1&digits=6&period=30",
        );
        assert_eq!(app.secret(), b"12345678901234567890");
        assert_eq!(app.code(59 / 30), "287082");
        assert_eq!(app.code(1_111_111_109 / 30), "081804");
        assert_eq!(app.code(2_000_000_000 / 30), "279037");
    }
}

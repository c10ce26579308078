//! Capabilities (protocol.md 8.1): optional features, named by short strings in
//! `Hello.capabilities` and `Welcome.capabilities`. The one list of the names chat/1 defines;
//! clients and servers compare against these, never against literals.

/// A capability of chat/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Typing indicators travel as QUIC datagrams (protocol.md 4.4).
    Datagrams,
    /// The client follows `Welcome.redirect` (protocol.md 3.3).
    Redirect,
    /// File upload and download (chat/1.1, protocol.md section 13).
    Files,
    /// Voice and video call signaling and ICE servers (chat/1.2, protocol.md section 14).
    Calls,
    /// Screen-share signals in calls (chat/1.3, protocol.md 14.3); needs `calls`.
    ScreenShare,
    /// Group calls of up to 8 devices, mesh signaling (protocol.md 14.7); needs `calls`.
    GroupCalls,
    /// Server admins' announcements to every user (protocol.md 9.6, 15.1).
    Broadcasts,
    /// Email verification, email change and password reset by emailed codes (protocol.md
    /// section 18).
    AccountRecovery,
    /// The server issues session tickets that resume with 0-RTT data and serves early-safe
    /// requests from it, in stream order until the connection is authenticated (protocol.md
    /// 2.5).
    ZeroRtt,
    /// Admins rotate the server's signing keys and secrets with an overlap in which the old
    /// ones still verify (protocol.md 9.6, "Key rotation").
    KeyRotation,
}

impl Capability {
    /// Every capability of chat/1 up to this crate's minor version (the reserved names are never
    /// offered nor accepted).
    pub const ALL: [Capability; 10] = [
        Capability::Datagrams,
        Capability::Redirect,
        Capability::Files,
        Capability::Calls,
        Capability::ScreenShare,
        Capability::GroupCalls,
        Capability::Broadcasts,
        Capability::AccountRecovery,
        Capability::ZeroRtt,
        Capability::KeyRotation,
    ];

    /// The name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::Datagrams => "datagrams",
            Capability::Redirect => "redirect",
            Capability::Files => "files",
            Capability::Calls => "calls",
            Capability::ScreenShare => "screen_share",
            Capability::GroupCalls => "group_calls",
            Capability::Broadcasts => "broadcasts",
            Capability::AccountRecovery => "account_recovery",
            Capability::ZeroRtt => "zero_rtt",
            Capability::KeyRotation => "key_rotation",
        }
    }

    /// The capability a wire name stands for; `None` for unknown and reserved names, which a
    /// receiver ignores.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True when `names` (a Hello's or Welcome's list) contains this capability.
    pub fn is_in(self, names: &[String]) -> bool {
        names.iter().any(|n| n == self.name())
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Capability;

    #[test]
    fn names_round_trip_and_reserved_names_are_unknown() {
        for cap in Capability::ALL {
            assert_eq!(Capability::from_name(cap.name()), Some(cap));
        }
        for reserved in ["push", "Datagrams", "Files", "Calls", ""] {
            assert_eq!(Capability::from_name(reserved), None);
        }
        assert!(Capability::Redirect.is_in(&["datagrams".into(), "redirect".into()]));
        assert!(!Capability::Datagrams.is_in(&["redirect".into()]));
    }
}

//! Address ranges in CIDR notation, IPv4 and IPv6: parsed strictly (no host bits below the
//! prefix, so a rule means exactly what it says), printed canonically (the one spelling a rule
//! is stored and compared under), and matched against a connecting address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A range of addresses: `address/prefix`, both of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not a [`Cidr`]; the text says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IPv4 or IPv6 address.
    #[error("not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.0/24, 2001:db8::/32)")]
    Address,
    /// The prefix is not a number within the family's width.
    #[error("the prefix length must be 0-{max} for this address family")]
    Prefix {
        /// 32 or 128.
        max: u8,
    },
    /// Bits are set below the prefix.
    #[error("host bits are set below the prefix; the range is {0}")]
    HostBits(Cidr),
}

impl Cidr {
    /// Whether `addr` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask32(u32::from(a), self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask128(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, how a dual-stack socket reports IPv4 peers) as
/// their IPv4 address; anything else as is.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whose budget a client address uses in the per-address limits: an IPv4 address (also one
/// reported IPv4-mapped) is one client, and an IPv6 address counts by its /64, the block one
/// host or site is given, so that a host cannot get a fresh budget from each of its 2^64
/// addresses.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        IpAddr::V6(v6) => IpAddr::V6(mask128(u128::from(v6), 64).into()),
        v4 => v4,
    }
}

fn mask32(bits: u32, prefix: u8) -> u32 {
    bits.checked_shr(32 - u32::from(prefix))
        .and_then(|b| b.checked_shl(32 - u32::from(prefix)))
        .unwrap_or(0)
}

fn mask128(bits: u128, prefix: u8) -> u128 {
    bits.checked_shr(128 - u32::from(prefix))
        .and_then(|b| b.checked_shl(128 - u32::from(prefix)))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `address` (one host) or `address/prefix`, with no host bits set below the prefix.
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(IpAddr::from_str(addr).map_err(|_| CidrError::Address)?);
        let max = width(addr);
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let ok = !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
                match p.parse::<u8>() {
                    Ok(n) if ok && n <= max => n,
                    _ => return Err(CidrError::Prefix { max }),
                }
            }
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask32(u32::from(a), prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask128(u128::from(a), prefix))),
        };
        let cidr = Cidr { network, prefix };
        if network != addr {
            return Err(CidrError::HostBits(cidr));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    /// Always with the prefix: `203.0.113.7/32`, `2001:db8::/32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let key = |s: &str| client_key(s.parse().expect("ip")).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::"), "2001:db8:1:2::");
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().expect(s)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn ranges_print_canonically_and_reject_what_is_ambiguous() {
        assert_eq!(cidr("203.0.113.7").to_string(), "203.0.113.7/32");
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("2001:DB8::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("::ffff:192.0.2.1").to_string(), "192.0.2.1/32");
        assert_eq!(
            "10.0.0.1/8".parse::<Cidr>(),
            Err(CidrError::HostBits(cidr("10.0.0.0/8")))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32 })
        );
        assert_eq!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 128 })
        );
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "host.example",
            "::/ 8",
            "1.2.3.4/08/1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_match_addresses_of_their_family() {
        let net = cidr("198.51.100.0/24");
        assert!(net.contains(ip("198.51.100.0")) && net.contains(ip("198.51.100.255")));
        assert!(!net.contains(ip("198.51.101.0")));
        assert!(net.contains(ip("::ffff:198.51.100.9")), "mapped IPv4");
        assert!(!net.contains(ip("2001:db8::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        let v6 = cidr("2001:db8:aa::/48");
        assert!(v6.contains(ip("2001:db8:aa:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:ab::1")));
        assert!(!v6.contains(ip("198.51.100.9")));
        assert!(cidr("::/0").contains(ip("::1")));
        assert!(cidr("192.0.2.1").contains(ip("192.0.2.1")));
    }
}

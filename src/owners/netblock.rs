//! Netblocks: a CIDR (`203.0.113.0/24`, `2001:db8::/32`) or a first–last
//! range (`192.0.2.10-192.0.2.20`), of one address family.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A contiguous block of addresses, both ends included. IPv4 blocks are
/// kept as IPv4-mapped IPv6 keys, so one index holds both families and an
/// IPv4 block never contains an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Netblock {
    first: u128,
    last: u128,
    v4: bool,
}

/// The key of an address: IPv6 as is, IPv4 mapped (`::ffff:a.b.c.d`).
pub fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Netblock {
    /// Reads `203.0.113.0/24`, `2001:db8::/48`, `192.0.2.10-192.0.2.20` or
    /// a single address (a block of one).
    ///
    /// # Errors
    /// What is wrong, in words for the row that holds it.
    pub fn parse(text: &str) -> Result<Netblock, String> {
        let text = text.trim();
        if let Some((addr, len)) = text.split_once('/') {
            let ip: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{addr:?} is not an IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u32 = len
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("prefix length {len:?} is not 0 to {max}"))?;
            let host_bits = max - len;
            let host_mask: u128 = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
            let k = key(ip);
            if k & host_mask != 0 {
                return Err(format!(
                    "{text} has host bits set (the network is {})",
                    Netblock::of(k & !host_mask, k | host_mask, ip.is_ipv4())
                        .cidr()
                        .unwrap_or_default()
                ));
            }
            return Ok(Netblock::of(k, k | host_mask, ip.is_ipv4()));
        }
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let parse = |s: &str| -> Result<IpAddr, String> {
            s.trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IP address", s.trim()))
        };
        let (first, last) = (parse(a)?, parse(b)?);
        if first.is_ipv4() != last.is_ipv4() {
            return Err(format!("{text} mixes IPv4 and IPv6"));
        }
        let (first, last) = (key(first), key(last));
        if first > last {
            return Err(format!("{text} ends before it starts"));
        }
        Ok(Netblock::of(
            first,
            last,
            a.trim().parse::<Ipv4Addr>().is_ok(),
        ))
    }

    fn of(first: u128, last: u128, v4: bool) -> Netblock {
        Netblock { first, last, v4 }
    }

    pub fn first_key(&self) -> u128 {
        self.first
    }

    pub fn last_key(&self) -> u128 {
        self.last
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        (self.first..=self.last).contains(&key(ip))
    }

    /// How many addresses it holds, less one: the smaller, the more
    /// specific.
    pub fn span(&self) -> u128 {
        self.last - self.first
    }

    fn addr(&self, k: u128) -> IpAddr {
        if self.v4 {
            IpAddr::V4(Ipv4Addr::from((k & 0xffff_ffff) as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(k))
        }
    }

    /// The block as a CIDR, when it is one.
    pub fn cidr(&self) -> Option<String> {
        let size = self.span().checked_add(1);
        let bits = if self.v4 { 32 } else { 128 };
        let host_bits = match size {
            None => 128,
            Some(size) if size.is_power_of_two() => size.trailing_zeros(),
            Some(_) => return None,
        };
        if host_bits > bits || (host_bits < 128 && self.first & ((1u128 << host_bits) - 1) != 0) {
            return None;
        }
        Some(format!("{}/{}", self.addr(self.first), bits - host_bits))
    }
}

/// `203.0.113.0/24` when the block is a CIDR, else `first-last`.
impl fmt::Display for Netblock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cidr() {
            Some(cidr) => f.write_str(&cidr),
            None => write!(f, "{}-{}", self.addr(self.first), self.addr(self.last)),
        }
    }
}

impl Netblock {
    /// Whether this is an IPv4 block.
    pub fn is_v4(&self) -> bool {
        self.v4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_ranges_and_single_addresses_read_and_print_back() {
        for text in [
            "203.0.113.0/24",
            "0.0.0.0/0",
            "192.0.2.7/32",
            "2001:db8::/32",
            "::/0",
            "2001:db8::1/128",
        ] {
            assert_eq!(Netblock::parse(text).unwrap().to_string(), text);
        }
        let range = Netblock::parse("192.0.2.10 - 192.0.2.20").unwrap();
        assert_eq!(range.to_string(), "192.0.2.10-192.0.2.20");
        assert_eq!(range.span(), 10);
        assert_eq!(
            Netblock::parse("192.0.2.0-192.0.2.255")
                .unwrap()
                .to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            Netblock::parse("192.0.2.9").unwrap().to_string(),
            "192.0.2.9/32"
        );
        assert!(Netblock::parse("203.0.113.0/24").unwrap().is_v4());
        assert!(!Netblock::parse("2001:db8::/32").unwrap().is_v4());
    }

    #[test]
    fn an_ipv4_block_holds_no_ipv6_address_and_the_other_way_round() {
        let v4 = Netblock::parse("0.0.0.0/0").unwrap();
        assert!(v4.contains("198.51.100.1".parse().unwrap()));
        assert!(!v4.contains("2001:db8::1".parse().unwrap()));
        let v6 = Netblock::parse("2001:db8::/32").unwrap();
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        let err = |t: &str| Netblock::parse(t).unwrap_err();
        assert!(
            err("203.0.113.5/24").contains("host bits"),
            "{}",
            err("203.0.113.5/24")
        );
        assert!(err("203.0.113.0/33").contains("prefix length"));
        assert!(err("example.com").contains("not an IP address"));
        assert!(err("192.0.2.20-192.0.2.10").contains("ends before"));
        assert!(err("192.0.2.1-2001:db8::1").contains("mixes"));
    }
}

//! Owners for the benchmarks: 100,000 netblocks (IPv4 and IPv6, nested:
//! /16s holding /24s holding /29s, a tenth reassigned over time) and
//! 100,000 domains, from a fixed seed. Shared by `--bench owners` and
//! `--bench pipeline` (its routing).

use abuse_inbox::owners::{Assignment, Netblock, Target};
use chrono::{DateTime, Duration, Utc};
use std::net::{Ipv4Addr, Ipv6Addr};

pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

/// The first day of the assignments' history.
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("a time")
        .to_utc()
}

/// 100,000 / `scale` netblocks and as many domains, drawn from `rng`.
pub fn assignments(scale: usize, rng: &mut Lcg) -> Vec<Assignment> {
    let start = start();
    let day = |n: u64| start + Duration::days(n as i64);
    let mut assignments = Vec::new();
    let mut push = |customer: String, target: Target, from, until| {
        assignments.push(Assignment {
            customer,
            target,
            valid_from: from,
            valid_until: until,
        })
    };
    let blocks = 100_000 / scale;
    for n in 0..blocks as u64 {
        let customer = format!("c{}", n % 20_000);
        let r = rng.next();
        let target = if n % 4 == 3 {
            let prefix =
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(r & 0xffff_ffff) << 64;
            let len = [40, 48, 56, 64][(r >> 40) as usize % 4];
            let mask = !(u128::MAX >> len);
            Netblock::parse(&format!("{}/{len}", Ipv6Addr::from(prefix & mask)))
        } else {
            let addr = 0x0a00_0000u32 | (r as u32 & 0x00ff_ffff);
            let len = [16, 24, 24, 29][(r >> 40) as usize % 4];
            let mask = !(u32::MAX >> len);
            Netblock::parse(&format!("{}/{len}", Ipv4Addr::from(addr & mask)))
        }
        .expect("a block");
        // A tenth are reassigned: one holder until a day, another after.
        if n % 10 == 0 {
            let t = day(r % 600);
            push(customer.clone(), Target::Netblock(target), None, Some(t));
            push(
                format!("c{}", (n + 1) % 20_000),
                Target::Netblock(target),
                Some(t),
                None,
            );
        } else {
            push(customer, Target::Netblock(target), None, None);
        }
    }
    for n in 0..(100_000 / scale) as u64 {
        push(
            format!("c{}", n % 20_000),
            Target::Domain(format!("site{n}.example.com")),
            None,
            None,
        );
    }
    assignments
}

//! Owner lookups: `cargo bench --bench owners`.
//!
//! 100,000 netblocks (IPv4 and IPv6, nested: /16s holding /24s holding
//! /29s, some reassigned over time) and 100,000 domains; the index built,
//! then 200,000 lookups by address and 200,000 by host name at random
//! times. Prints one JSON line: build time, lookup p50/p99 in µs.

#[path = "common/owners_data.rs"]
mod owners_data;

use abuse_inbox::owners::Index;
use chrono::Duration;
use owners_data::Lcg;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let mut rng = Lcg(42);
    let day = |n: u64| owners_data::start() + Duration::days(n as i64);
    let assignments = owners_data::assignments(scale, &mut rng);
    let count = assignments.len();
    let t = Instant::now();
    let index = Index::new(assignments);
    let build = t.elapsed().as_secs_f64();

    let queries = 200_000 / scale;
    let mut by_address = Vec::with_capacity(queries);
    let mut found = 0usize;
    for _ in 0..queries {
        let r = rng.next();
        let ip = if r % 4 == 3 {
            IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128
                    | u128::from(rng.next() & 0xffff_ffff) << 64
                    | u128::from(rng.next()),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 | (r as u32 & 0x00ff_ffff)))
        };
        let at = day(rng.next() % 700);
        let t = Instant::now();
        let hit = index.address(ip, at);
        by_address.push(t.elapsed().as_secs_f64() * 1e6);
        found += usize::from(hit.is_some());
    }
    let mut by_domain = Vec::with_capacity(queries);
    for _ in 0..queries {
        let host = format!("www.shop.site{}.example.com", rng.next() % 120_000);
        let at = day(rng.next() % 700);
        let t = Instant::now();
        let hit = index.domain(&host, at);
        by_domain.push(t.elapsed().as_secs_f64() * 1e6);
        found += usize::from(hit.is_some());
    }
    by_address.sort_by(f64::total_cmp);
    by_domain.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\":\"owners_lookup\",\"assignments\":{count},\"build_seconds\":{build:.3},\"address_p50_us\":{:.2},\"address_p99_us\":{:.2},\"domain_p50_us\":{:.2},\"domain_p99_us\":{:.2},\"found\":{found}}}",
        percentile(&by_address, 0.5),
        percentile(&by_address, 0.99),
        percentile(&by_domain, 0.5),
        percentile(&by_domain, 0.99),
    );
}

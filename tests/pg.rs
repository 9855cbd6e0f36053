//! The PostgreSQL store against a real server (tests/util/pg.rs): intake
//! commits and dedup, claims shared by two nodes, a dead node's lease
//! taken over, two nodes migrating one new database at once.

use crate::util::pg::Cluster;
use abuse_inbox::model::{Envelope, Incoming, Origin, Sender};
use abuse_inbox::store::{self, Db, Location, Mode, Role};
use std::collections::HashSet;
use std::time::Duration;

fn connect(url: &str) -> Result<Db, store::Error> {
    store::open(
        &Location::Postgres(url.to_owned()),
        Mode::ReadWrite {
            role: Role::Intake,
            create: true,
        },
    )
}

fn incoming(n: usize) -> Incoming {
    Incoming {
        envelope: Envelope {
            origin: Origin::Smtp,
            peer_ip: Some("192.0.2.1".parse().unwrap()),
            helo: Some("mx.example.net".into()),
            mail_from: Sender::Address("reporter@example.net".into()),
            rcpt_to: vec!["abuse@example.com".into()],
            dsn: None,
        },
        received_at: format!("2026-12-02T10:00:{:02}.000000Z", n % 60),
        bytes: crate::util::message(&format!("pg-{n}"), &format!("report {n}")),
    }
}

#[test]
fn intake_commits_once_per_message_and_knows_a_duplicate() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    assert_eq!(pg.schema_version().unwrap(), 1);
    let (a, b) = (incoming(1), incoming(2));
    let first = pg.commit_raws(&[&a, &b]).unwrap();
    assert!(first.iter().all(|c| !c.is_duplicate));
    let again = pg.commit_raws(&[&a]).unwrap();
    assert!(again[0].is_duplicate);
    assert_eq!(again[0].raw_id, first[0].raw_id);
    assert_eq!(pg.backlog().unwrap(), 2);
    // What a 250 waits for, whatever the server's default.
    let mut check = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let stored: i64 = check
        .query_one("SELECT count(*) FROM raw_messages", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    // A reconnect does not migrate again.
    assert_eq!(connect(&url).unwrap().schema_version().unwrap(), 1);
}

#[test]
fn two_nodes_claim_every_message_exactly_once_and_take_over_a_dead_nodes_lease() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    let messages: Vec<Incoming> = (0..200).map(incoming).collect();
    let refs: Vec<&Incoming> = messages.iter().collect();
    pg.commit_raws(&refs).unwrap();
    let nodes: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let url = url.clone();
            std::thread::spawn(move || {
                let pg = connect(&url).unwrap();
                let mut mine = Vec::new();
                loop {
                    let batch = pg
                        .claim_unprocessed(node, 7, u64::MAX, Duration::from_secs(60))
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let claims: Vec<Vec<_>> = nodes.into_iter().map(|n| n.join().unwrap()).collect();
    let all: Vec<_> = claims.iter().flatten().copied().collect();
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "claimed twice or missed");
    assert_eq!(unique.len(), 200);
    assert!(
        claims.iter().all(|c| !c.is_empty()),
        "one node did all the work"
    );
    // A node dies holding a short lease: once it runs out, another node
    // takes the message.
    let extra = incoming(500);
    pg.commit_raws(&[&extra]).unwrap();
    let dead = pg
        .claim_unprocessed("dead", 10, u64::MAX, Duration::from_millis(300))
        .unwrap();
    assert_eq!(dead.len(), 1);
    let other = connect(&url).unwrap();
    assert!(other
        .claim_unprocessed("c", 10, u64::MAX, Duration::from_secs(60))
        .unwrap()
        .is_empty());
    std::thread::sleep(Duration::from_millis(400));
    let taken = other
        .claim_unprocessed("c", 10, u64::MAX, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        taken.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![dead[0].id]
    );
    assert_eq!(taken[0].bytes, extra.bytes);
}

#[test]
fn a_claim_stays_within_the_byte_budget_but_always_takes_one() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let mut pg = connect(&url).unwrap();
    let messages: Vec<Incoming> = (0..5).map(incoming).collect();
    let refs: Vec<&Incoming> = messages.iter().collect();
    pg.commit_raws(&refs).unwrap();
    let size = messages[0].bytes.len() as u64;
    let batch = pg
        .claim_unprocessed("a", 10, size * 2, Duration::from_secs(60))
        .unwrap();
    assert_eq!(batch.len(), 2, "two messages fit in the budget");
    let batch = pg
        .claim_unprocessed("a", 10, 1, Duration::from_secs(60))
        .unwrap();
    assert_eq!(batch.len(), 1, "one message always goes, however big");
}

#[test]
fn nodes_starting_together_migrate_a_new_database_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.create_db();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || connect(&url).map(|pg| pg.schema_version().unwrap()))
        })
        .collect();
    for start in starts {
        assert_eq!(start.join().unwrap().unwrap(), 1);
    }
}

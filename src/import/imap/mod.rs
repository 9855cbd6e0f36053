//! IMAP: a folder read through [`client`], for `import imap://…` (the
//! whole folder, read-only, oldest first) and for `serve`'s `[[imap]]`
//! intake (which moves what it has committed; see `daemon::imap`).

pub mod client;

use super::{Found, Item};
use crate::config::ImapAddress;
use client::{Connection, Listed, Options};
use std::collections::VecDeque;

/// UIDs whose sizes are asked at once.
const LIST_CHUNK: usize = 256;
/// Bytes of bodies fetched at once, at most (one larger message alone).
const BODY_CHUNK_BYTES: u64 = 16 << 20;

/// Why a message from IMAP is not taken, if it is not: nothing, or not a
/// message at all (its first line is no header field). The rest of the
/// intake's rules (size, parsing budgets) apply as for SMTP.
pub fn not_a_message(bytes: &[u8]) -> Option<&'static str> {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let name_len = first
        .iter()
        .take_while(|b| b.is_ascii_graphic() && **b != b':')
        .count();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Some("the message is empty")
    } else if name_len == 0 || first.get(name_len) != Some(&b':') {
        Some("not a mail message: its first line is not a header field")
    } else {
        None
    }
}

/// The messages of `list`, split into those to fetch and those too large.
pub fn split_by_size(list: Vec<Listed>, max: u64) -> (Vec<Listed>, Vec<Listed>) {
    list.into_iter().partition(|l| l.size <= max)
}

/// Groups of `listed` whose bodies together stay within the chunk size.
pub fn body_chunks(listed: &[Listed]) -> Vec<&[Listed]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, l) in listed.iter().enumerate() {
        if i > start && bytes + l.size > BODY_CHUNK_BYTES {
            chunks.push(&listed[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += l.size;
    }
    if start < listed.len() {
        chunks.push(&listed[start..]);
    }
    chunks
}

/// A whole folder, read-only and oldest first, for `import`: a blocking
/// iterator over an async connection.
pub struct Reader {
    runtime: tokio::runtime::Runtime,
    connection: Option<Connection>,
    uids: VecDeque<u32>,
    ready: VecDeque<Item>,
    max_bytes: u64,
    /// Messages in the folder when it was opened.
    pub total: u64,
}

impl Reader {
    /// Logs in and opens the folder read-only (`EXAMINE`).
    ///
    /// # Errors
    /// The server cannot be reached, refuses the login or the folder.
    pub fn open(
        address: &ImapAddress,
        options: &Options,
        max_bytes: u64,
    ) -> Result<Reader, client::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| client::Error::Connect {
                host: address.host.clone(),
                port: address.port,
                source,
            })?;
        let (connection, uids) = runtime.block_on(async {
            let mut connection = Connection::open(address, options).await?;
            connection.open_folder(&address.folder, true).await?;
            let uids = connection.uids_from(1).await?;
            Ok::<_, client::Error>((connection, uids))
        })?;
        Ok(Reader {
            runtime,
            connection: Some(connection),
            total: uids.len() as u64,
            uids: uids.into(),
            ready: VecDeque::new(),
            max_bytes,
        })
    }

    fn next_chunk(&mut self) -> Result<(), client::Error> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        let chunk: Vec<u32> = self.uids.drain(..self.uids.len().min(LIST_CHUNK)).collect();
        let max = self.max_bytes;
        let ready = &mut self.ready;
        self.runtime.block_on(async {
            let listed = connection.list(&chunk).await?;
            let (fits, too_large) = split_by_size(listed.clone(), max);
            let mut items: Vec<(u32, Item)> = too_large
                .iter()
                .map(|l| {
                    (
                        l.uid,
                        Item::Skipped {
                            place: format!("uid {}", l.uid),
                            reason: format!(
                                "larger than smtp.max_message_bytes ({} > {max} bytes)",
                                l.size
                            ),
                        },
                    )
                })
                .collect();
            for part in body_chunks(&fits) {
                let bodies = connection.bodies(part).await?;
                for l in part {
                    let place = format!("uid {}", l.uid);
                    let item = match bodies.iter().position(|(uid, _)| *uid == l.uid) {
                        None => Item::Skipped {
                            place,
                            reason: "the server gave no body for it".into(),
                        },
                        Some(i) => {
                            let bytes = bodies[i].1.clone();
                            match not_a_message(&bytes) {
                                Some(reason) => Item::Skipped {
                                    place,
                                    reason: reason.into(),
                                },
                                None => Item::Message(Found {
                                    bytes,
                                    arrived: l.arrived,
                                    place,
                                }),
                            }
                        }
                    };
                    items.push((l.uid, item));
                }
            }
            items.sort_by_key(|(uid, _)| *uid);
            ready.extend(items.into_iter().map(|(_, item)| item));
            Ok(())
        })
    }
}

impl Iterator for Reader {
    type Item = std::io::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.ready.is_empty() && !self.uids.is_empty() {
            if let Err(e) = self.next_chunk() {
                self.uids.clear();
                self.connection = None;
                return Some(Err(std::io::Error::other(e.to_string())));
            }
        }
        let item = self.ready.pop_front();
        if item.is_none() {
            if let Some(connection) = self.connection.take() {
                self.runtime.block_on(connection.close());
            }
        }
        item.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_message() {
        assert_eq!(not_a_message(b"From: a@b\r\n\r\nhi"), None);
        assert_eq!(not_a_message(b"Received: x\n"), None);
        assert!(not_a_message(b"").is_some());
        assert!(not_a_message(b" \r\n\r\n").is_some());
        assert!(not_a_message(b"\x00\x01binary").is_some());
        assert!(not_a_message(b"hello world\r\n").is_some());
    }

    #[test]
    fn bodies_are_fetched_in_bounded_chunks() {
        let l = |uid, size| Listed {
            uid,
            size,
            arrived: None,
        };
        let listed = [l(1, 10 << 20), l(2, 10 << 20), l(3, 1), l(4, 40 << 20)];
        let chunks = body_chunks(&listed);
        let uids: Vec<Vec<u32>> = chunks
            .iter()
            .map(|c| c.iter().map(|l| l.uid).collect())
            .collect();
        assert_eq!(uids, vec![vec![1], vec![2, 3], vec![4]]);
    }
}

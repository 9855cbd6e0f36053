//! Maildir: every file in `new/` and `cur/` is a message (flags ignored, so
//! what a person read is imported too); `tmp/` holds deliveries in progress
//! and is left alone. A file's name starts with its delivery time in
//! seconds (`1733216400.M42P7.host:2,S`), which orders them and says when
//! each arrived; without it, the file's modification time does.

use super::{Found, Item};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The messages of the Maildir at `dir`, oldest first.
///
/// # Errors
/// `dir` is not a Maildir (no `cur/` and no `new/`), or cannot be listed.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut found_one = false;
    for sub in ["new", "cur"] {
        let entries = match std::fs::read_dir(dir.join(sub)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        found_one = true;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() && !entry.file_name().to_string_lossy().starts_with('.')
            {
                files.push(entry.path());
            }
        }
    }
    if !found_one {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} is not a Maildir (it has no cur/ or new/)",
                dir.display()
            ),
        ));
    }
    // By delivery time; names without one after, by name.
    files.sort_by_key(|p| {
        let at = delivered(p).map(|t| t.timestamp());
        (at.is_none(), at, p.file_name().map(|n| n.to_owned()))
    });
    Ok(files)
}

/// When the name says the message was delivered.
fn delivered(path: &Path) -> Option<DateTime<Utc>> {
    let name = path.file_name()?.to_str()?;
    let digits: &str = &name[..name.bytes().take_while(u8::is_ascii_digit).count()];
    let seconds: i64 = digits.parse().ok()?;
    // Plausible delivery times only (1990 … 2100): other names start with
    // digits too.
    (631_152_000..4_102_444_800)
        .contains(&seconds)
        .then(|| DateTime::from_timestamp(seconds, 0))
        .flatten()
}

/// Reads the message at `path`, at most `max_bytes` of it.
pub fn read(path: &Path, max_bytes: u64) -> Item {
    let place = path
        .iter()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<PathBuf>()
        .display()
        .to_string();
    let skipped = |reason: String| Item::Skipped {
        place: place.clone(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return skipped(format!("cannot read it: {e}")),
    };
    if meta.len() > max_bytes {
        return skipped(format!(
            "{} bytes, more than smtp.max_message_bytes ({max_bytes})",
            meta.len()
        ));
    }
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => skipped("empty".into()),
        Ok(bytes) => Item::Message(Found {
            bytes,
            arrived: delivered(path).or_else(|| meta.modified().ok().map(DateTime::<Utc>::from)),
            place,
        }),
        Err(e) => skipped(format!("cannot read it: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maildir_lists_new_and_cur_oldest_first_and_reads_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        put(
            "cur/1733216400.M2P1.host:2,S",
            "Subject: b\n\nread by a person\n",
        );
        put("new/1733130000.M1P1.host", "Subject: a\n\nnew\n");
        put("tmp/1733000000.M0P1.host", "Subject: in delivery\n\n");
        put("new/big", &"x".repeat(100));
        put("cur/.hidden", "Subject: no\n\n");
        let files = list(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names[..2],
            ["1733130000.M1P1.host", "1733216400.M2P1.host:2,S"],
            "{names:?}"
        );
        assert_eq!(names.len(), 3, "tmp/ and dot files are not messages");
        let Item::Message(first) = read(&files[0], 50) else {
            panic!("read")
        };
        assert_eq!(first.arrived.unwrap().timestamp(), 1_733_130_000);
        assert_eq!(first.place, "new/1733130000.M1P1.host");
        assert!(
            matches!(read(&files[2], 50), Item::Skipped { reason, .. } if reason.contains("more than"))
        );
        assert!(list(&dir.path().join("cur")).is_err(), "not a Maildir");
    }
}

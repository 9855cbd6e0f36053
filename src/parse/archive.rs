//! Zip and gzip attachments: the files inside become attachments of their
//! own, so a zipped `evidence.csv` or a gzipped DMARC `report.xml.gz` is
//! read like an attached one.
//!
//! In: an attachment that is a zip archive or gzip file. Out: its files, each with a
//! content type from its name, and warnings for what was skipped. Built for
//! hostile input (zip bombs): at most [`MAX_ENTRIES`] files, each read only
//! up to [`MAX_ENTRY_BYTES`] whatever its header claims, at most
//! [`MAX_TOTAL_BYTES`] inflated from all archives of a message together
//! (counted as bytes actually inflated, not as declared), no entry that
//! expands more than [`MAX_RATIO`] times its compressed size (checked while
//! inflating, so a lying header does not help), no archives inside
//! archives, no encrypted entries.

use super::Attachment;
use std::io::Read;

/// Files taken from one archive; the rest are skipped with a warning.
pub const MAX_ENTRIES: usize = 100;
/// Bytes read from one file of an archive.
pub const MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes inflated from all archives of one message altogether.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Uncompressed size over compressed size beyond which an entry is a bomb.
pub const MAX_RATIO: u64 = 200;

/// Whether `attachment` is a zip archive (by type or by name).
pub fn is_zip(attachment: &Attachment) -> bool {
    matches!(
        attachment.content_type.as_str(),
        "application/zip" | "application/x-zip-compressed" | "application/x-zip"
    ) || attachment.extension().as_deref() == Some("zip")
}

/// The files of the archive in `zip`, inflating at most `budget` bytes (what
/// is inflated is taken off it); what is skipped is said in `warnings`.
pub fn expand(zip: &Attachment, budget: &mut u64, warnings: &mut Vec<String>) -> Vec<Attachment> {
    let origin = &zip.origin;
    let mut archive = match ::zip::ZipArchive::new(std::io::Cursor::new(&zip.bytes[..])) {
        Ok(archive) => archive,
        Err(error) => {
            warnings.push(format!("zip: {origin} is not a readable archive: {error}"));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for index in 0..archive.len() {
        if *budget == 0 {
            warnings.push(format!(
                "zip: {origin}: the message's budget of {MAX_TOTAL_BYTES} inflated bytes is spent; the rest was skipped"
            ));
            break;
        }
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(error) => {
                warnings.push(format!("zip: {origin} entry {index} unreadable: {error}"));
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let skip = |why: &str| format!("zip: {origin} entry {name:?} skipped: {why}");
        if files.len() == MAX_ENTRIES {
            warnings.push(format!(
                "zip: {origin} has more than {MAX_ENTRIES} files; the rest were skipped"
            ));
            break;
        }
        if entry.encrypted() {
            warnings.push(skip("encrypted"));
            continue;
        }
        let declared = entry.size();
        if declared > entry.compressed_size().max(1).saturating_mul(MAX_RATIO) {
            warnings.push(skip(&format!(
                "expands more than {MAX_RATIO} times (a zip bomb?)"
            )));
            continue;
        }
        if name.to_ascii_lowercase().ends_with(".zip") {
            warnings.push(skip("archives inside archives are not opened"));
            continue;
        }
        // Read no more than allowed, whatever the header says: the ratio is
        // checked on what actually inflates.
        let by_ratio = entry.compressed_size().max(1).saturating_mul(MAX_RATIO);
        let limit = MAX_ENTRY_BYTES.min(*budget).min(by_ratio);
        let mut bytes = Vec::new();
        let read = (&mut entry).take(limit + 1).read_to_end(&mut bytes);
        *budget = budget.saturating_sub(bytes.len() as u64);
        match read {
            Ok(n) if n as u64 > limit && limit == by_ratio => {
                warnings.push(skip(&format!(
                    "expands more than {MAX_RATIO} times (a zip bomb?)"
                )));
                continue;
            }
            Ok(n) if n as u64 > limit => {
                warnings.push(skip(&format!("larger than {limit} bytes")));
                continue;
            }
            Ok(_) => {}
            Err(error) => {
                warnings.push(skip(&error.to_string()));
                continue;
            }
        }
        files.push(Attachment {
            origin: format!("{origin} zip"),
            content_type: content_type(&name).to_owned(),
            name: Some(name),
            bytes,
        });
    }
    files
}

/// Whether `attachment` is gzip-compressed (by type, by name, or by its
/// magic bytes under a generic type).
pub fn is_gzip(attachment: &Attachment) -> bool {
    matches!(
        attachment.content_type.as_str(),
        "application/gzip" | "application/x-gzip" | "application/gzip-compressed"
    ) || attachment.extension().as_deref() == Some("gz")
        || (attachment.content_type == "application/octet-stream"
            && attachment.bytes.starts_with(&[0x1f, 0x8b]))
}

/// The one file of the gzip stream in `gz` (its name without `.gz`),
/// inflating at most `budget` bytes under the same limits as a zip entry:
/// [`MAX_ENTRY_BYTES`], and [`MAX_RATIO`] times its compressed size, both
/// checked on what actually inflates.
pub fn gunzip(gz: &Attachment, budget: &mut u64, warnings: &mut Vec<String>) -> Option<Attachment> {
    let origin = &gz.origin;
    let name = gz
        .name
        .as_deref()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .map(|n| {
            n.strip_suffix(".gz")
                .or_else(|| n.strip_suffix(".GZ"))
                .unwrap_or(n)
        })
        .unwrap_or("attachment")
        .to_owned();
    if *budget == 0 {
        warnings.push(format!(
            "gzip: {origin}: the message's budget of {MAX_TOTAL_BYTES} inflated bytes is spent; not opened"
        ));
        return None;
    }
    let by_ratio = (gz.bytes.len() as u64).max(1).saturating_mul(MAX_RATIO);
    let limit = MAX_ENTRY_BYTES.min(*budget).min(by_ratio);
    let mut bytes = Vec::new();
    let read = flate2::read::MultiGzDecoder::new(&gz.bytes[..])
        .take(limit + 1)
        .read_to_end(&mut bytes);
    *budget = budget.saturating_sub(bytes.len() as u64);
    let skip = |why: String| format!("gzip: {origin} ({name}) skipped: {why}");
    match read {
        Ok(n) if n as u64 > limit && limit == by_ratio => {
            warnings.push(skip(format!(
                "expands more than {MAX_RATIO} times (a gzip bomb?)"
            )));
            None
        }
        Ok(n) if n as u64 > limit => {
            warnings.push(skip(format!("larger than {limit} bytes")));
            None
        }
        Ok(_) => Some(Attachment {
            origin: format!("{origin} gzip"),
            content_type: content_type(&name).to_owned(),
            name: Some(name),
            bytes,
        }),
        Err(error) => {
            warnings.push(skip(error.to_string()));
            None
        }
    }
}

/// A content type from a file name, for the formats we read.
fn content_type(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => "text/csv",
        "txt" | "log" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn archive(files: &[(&str, &[u8])]) -> Attachment {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut zip = ::zip::ZipWriter::new(&mut out);
            let options = ::zip::write::SimpleFileOptions::default()
                .compression_method(::zip::CompressionMethod::Deflated);
            for (name, bytes) in files {
                zip.start_file(*name, options).unwrap();
                zip.write_all(bytes).unwrap();
            }
            zip.finish().unwrap();
        }
        Attachment {
            origin: "part 1".into(),
            content_type: "application/zip".into(),
            name: Some("evidence.zip".into()),
            bytes: out.into_inner(),
        }
    }

    fn gzipped(name: &str, bytes: &[u8]) -> Attachment {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        Attachment {
            origin: "part 2".into(),
            content_type: "application/gzip".into(),
            name: Some(name.into()),
            bytes: gz.finish().unwrap(),
        }
    }

    #[test]
    fn a_gzip_file_is_opened_within_the_budget_and_a_bomb_is_refused() {
        let xml = b"<feedback><record/></feedback>";
        let gz = gzipped("google.com!example.com!1.xml.gz", xml);
        assert!(is_gzip(&gz));
        let mut budget = MAX_TOTAL_BYTES;
        let mut warnings = Vec::new();
        let file = gunzip(&gz, &mut budget, &mut warnings).unwrap();
        assert_eq!(file.name.as_deref(), Some("google.com!example.com!1.xml"));
        assert_eq!(file.content_type, "application/xml");
        assert_eq!(file.bytes, xml);
        assert_eq!(budget, MAX_TOTAL_BYTES - xml.len() as u64);
        // 64 MiB of zeros compress to ~64 KB: far past the ratio.
        let bomb = gzipped("bomb.xml.gz", &vec![0u8; 64 << 20]);
        assert!(gunzip(&bomb, &mut budget, &mut warnings).is_none());
        assert!(
            warnings.iter().any(|w| w.contains("gzip bomb")),
            "{warnings:?}"
        );
        // Not gzip at all: a warning, no panic.
        let mut junk = gzipped("junk.gz", b"x");
        junk.bytes = b"\x1f\x8bnot really".to_vec();
        assert!(gunzip(&junk, &mut budget, &mut warnings).is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn files_inside_become_attachments_and_bombs_are_refused() {
        let csv = b"192.0.2.1,2026-11-26T10:00:00Z,sshd[1]: Failed password\n";
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let inner = archive(&[("x.csv", csv)]);
        let zip = archive(&[
            ("logs/evidence.csv", csv),
            ("zeros.txt", &zeros),
            ("inner.zip", &inner.bytes),
        ]);
        assert!(is_zip(&zip));
        let mut warnings = Vec::new();
        let files = expand(&zip, &mut MAX_TOTAL_BYTES.clone(), &mut warnings);
        assert_eq!(files.len(), 1, "{warnings:?}");
        assert_eq!(files[0].name.as_deref(), Some("evidence.csv"));
        assert_eq!(files[0].content_type, "text/csv");
        assert_eq!(files[0].bytes, csv);
        assert!(
            warnings.iter().any(|w| w.contains("zip bomb")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("inside archives")),
            "{warnings:?}"
        );
    }

    /// Sets every declared uncompressed size to twice the compressed size,
    /// as a bomb whose headers lie would.
    fn lie_about_sizes(zip: &mut [u8]) {
        for (signature, compressed_at, size_at) in
            [(b"PK\x03\x04", 18, 22), (b"PK\x01\x02", 20, 24)]
        {
            let mut at = 0;
            while let Some(i) = zip[at..].windows(4).position(|w| w == signature) {
                let start = at + i;
                let c = u32::from_le_bytes(zip[start + compressed_at..][..4].try_into().unwrap());
                zip[start + size_at..][..4].copy_from_slice(&(c * 2).to_le_bytes());
                at = start + 4;
            }
        }
    }

    #[test]
    fn a_lying_bomb_inflates_no_more_than_the_ratio_allows() {
        let zeros = vec![b'1'; 8 * 1024 * 1024];
        let mut zip = archive(&[("evidence.csv", &zeros)]);
        lie_about_sizes(&mut zip.bytes);
        let mut warnings = Vec::new();
        let mut budget = MAX_TOTAL_BYTES;
        let files = expand(&zip, &mut budget, &mut warnings);
        assert!(files.is_empty(), "{warnings:?}");
        assert!(
            warnings.iter().any(|w| w.contains("zip bomb")),
            "{warnings:?}"
        );
        let inflated = MAX_TOTAL_BYTES - budget;
        assert!(
            inflated <= zip.bytes.len() as u64 * MAX_RATIO + 1,
            "inflated {inflated} bytes"
        );
    }

    #[test]
    fn the_inflate_budget_is_shared_by_the_archives_of_a_message() {
        // Digits that do not compress 200 times.
        let rows: Vec<u8> = (0u64..600 * 1024)
            .map(|i| b'0' + (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 10)
            .collect();
        let zip = archive(&[("a.csv", &rows[..]), ("b.csv", &rows[..])]);
        let mut budget = 1024 * 1024; // room for one file and a part of the next
        let mut warnings = Vec::new();
        let first = expand(&zip, &mut budget, &mut warnings);
        let second = expand(&zip, &mut budget, &mut warnings);
        assert_eq!(first.len() + second.len(), 1, "{warnings:?}");
        assert_eq!(budget, 0);
        assert!(
            warnings.iter().any(|w| w.contains("budget")),
            "{warnings:?}"
        );
    }

    #[test]
    fn garbage_named_zip_is_a_warning() {
        let not_zip = Attachment {
            origin: "part 2".into(),
            content_type: "application/octet-stream".into(),
            name: Some("report.zip".into()),
            bytes: b"PK\x03\x04 not really".to_vec(),
        };
        let mut warnings = Vec::new();
        assert!(expand(&not_zip, &mut MAX_TOTAL_BYTES.clone(), &mut warnings).is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}

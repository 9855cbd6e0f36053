//! Zip attachments: the files inside become attachments of their own, so a
//! zipped `evidence.csv` is read like an attached one.
//!
//! In: an attachment that is a zip archive. Out: its files, each with a
//! content type from its name, and warnings for what was skipped. Built for
//! hostile input (zip bombs): at most [`MAX_ENTRIES`] files, each read only
//! up to [`MAX_ENTRY_BYTES`] whatever its header claims, at most
//! [`MAX_TOTAL_BYTES`] from one archive, no entry that expands more than
//! [`MAX_RATIO`] times, no archives inside archives, no encrypted entries.

use super::Attachment;
use std::io::Read;

/// Files taken from one archive; the rest are skipped with a warning.
pub const MAX_ENTRIES: usize = 100;
/// Bytes read from one file of an archive.
pub const MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes read from one archive altogether.
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

/// The files of the archive in `zip`; what is skipped is said in `warnings`.
pub fn expand(zip: &Attachment, warnings: &mut Vec<String>) -> Vec<Attachment> {
    let origin = &zip.origin;
    let mut archive = match ::zip::ZipArchive::new(std::io::Cursor::new(&zip.bytes[..])) {
        Ok(archive) => archive,
        Err(error) => {
            warnings.push(format!("zip: {origin} is not a readable archive: {error}"));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    let mut budget = MAX_TOTAL_BYTES;
    for index in 0..archive.len() {
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
        // Read no more than allowed, whatever the header says.
        let limit = MAX_ENTRY_BYTES.min(budget);
        let mut bytes = Vec::new();
        match (&mut entry).take(limit + 1).read_to_end(&mut bytes) {
            Ok(n) if n as u64 > limit => {
                warnings.push(skip(&format!("larger than {limit} bytes")));
                continue;
            }
            Ok(n) => budget -= n as u64,
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
        let files = expand(&zip, &mut warnings);
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

    #[test]
    fn garbage_named_zip_is_a_warning() {
        let not_zip = Attachment {
            origin: "part 2".into(),
            content_type: "application/octet-stream".into(),
            name: Some("report.zip".into()),
            bytes: b"PK\x03\x04 not really".to_vec(),
        };
        let mut warnings = Vec::new();
        assert!(expand(&not_zip, &mut warnings).is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}

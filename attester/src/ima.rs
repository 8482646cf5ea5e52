//! Reads the IMA runtime measurement list and sends the entries the verifier has not verified
//! yet. The list is read after the quote, so it holds at least every entry the quoted PCR 10
//! covers; the verifier finds that prefix itself. Nothing here is trusted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use vigil_ima::HashAlg;
use vigil_ima::list::{Format, binary_entry_offsets, detect_format};
use vigil_proto::v1::ImaLog;

/// Where Linux exposes the IMA list (SHA-1 template hashes).
pub const DEFAULT_IMA_LOG: &str = "/sys/kernel/security/ima/binary_runtime_measurements";

/// Largest list sent: what fits in the verifier's 64 MiB evidence limit with the rest of the
/// evidence (about 400,000 entries); only the first attestation of a boot sends it whole.
pub const MAX_IMA_LOG_BYTES: u64 = 60 * 1024 * 1024;

/// The IMA list of one host.
pub struct ImaSource {
    path: PathBuf,
    /// The absence of a list is said once, not at every challenge.
    absence_reported: AtomicBool,
}

impl ImaSource {
    pub fn new(path: PathBuf) -> Self {
        ImaSource {
            path,
            absence_reported: AtomicBool::new(false),
        }
    }

    /// The list's entries from `offset` on; the whole list when it has fewer entries (the
    /// host rebooted since the verifier's last look).
    pub fn read(&self, offset: u64) -> ImaLog {
        let log = read_ima_log(&self.path, offset);
        if !log.present && !self.absence_reported.swap(true, Ordering::Relaxed) {
            eprintln!("vigil-attester: no IMA evidence: {}", log.note);
        }
        log
    }
}

/// The template hash algorithm of a list file: per-bank lists are named
/// `binary_runtime_measurements_<alg>`; the classic list is SHA-1.
pub fn template_hash_of(path: &Path) -> HashAlg {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('_'))
        .and_then(|(_, alg)| HashAlg::from_name(alg))
        .unwrap_or(HashAlg::Sha1)
}

/// Reads the list at `path` and keeps the entries from `offset` on.
pub fn read_ima_log(path: &Path, offset: u64) -> ImaLog {
    let source = path.display().to_string();
    let template_hash = template_hash_of(path);
    let absent = |note: String| ImaLog {
        present: false,
        source: source.clone(),
        note,
        template_hash: template_hash.name().to_owned(),
        ..ImaLog::default()
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return absent(format!(
                "no IMA list at {source} (IMA off, or securityfs not mounted)"
            ));
        }
        Err(e) => return absent(format!("IMA list at {source} is unreadable: {e}")),
    };
    let mut data = Vec::new();
    // securityfs reports size 0, so read with a cap instead of trusting metadata.
    if let Err(e) = file.take(MAX_IMA_LOG_BYTES + 1).read_to_end(&mut data) {
        return absent(format!("IMA list at {source} could not be read: {e}"));
    }
    if data.len() as u64 > MAX_IMA_LOG_BYTES {
        return absent(format!(
            "IMA list at {source} exceeds {MAX_IMA_LOG_BYTES} bytes; not sent"
        ));
    }
    let (first_entry, data) = slice_from(data, offset, template_hash);
    ImaLog {
        present: true,
        data,
        first_entry,
        source,
        note: String::new(),
        template_hash: template_hash.name().to_owned(),
    }
}

/// The entries from `offset` on, or the whole list (from 0) when it has fewer entries.
fn slice_from(data: Vec<u8>, offset: u64, template_hash: HashAlg) -> (u64, Vec<u8>) {
    if offset == 0 {
        return (0, data);
    }
    let start = match detect_format(&data) {
        Format::Binary => {
            let (offsets, end) = binary_entry_offsets(&data, template_hash);
            match usize::try_from(offset) {
                Ok(n) if n < offsets.len() => offsets.get(n).copied(),
                Ok(n) if n == offsets.len() => Some(end),
                _ => None,
            }
        }
        Format::Ascii => {
            let mut line_starts = vec![0usize];
            line_starts.extend(
                data.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1)
                    .filter(|i| *i < data.len()),
            );
            usize::try_from(offset)
                .ok()
                .and_then(|n| match n.cmp(&line_starts.len()) {
                    std::cmp::Ordering::Less => line_starts.get(n).copied(),
                    std::cmp::Ordering::Equal => Some(data.len()),
                    std::cmp::Ordering::Greater => None,
                })
        }
    };
    match start.and_then(|s| data.get(s..).map(<[u8]>::to_vec)) {
        Some(rest) => (offset, rest),
        None => (0, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_entry(name: &str) -> Vec<u8> {
        let mut data = Vec::new();
        let mut fields = Vec::new();
        for field in [b"sha256:\0".as_slice(), name.as_bytes()] {
            fields.extend_from_slice(&(field.len() as u32).to_le_bytes());
            fields.extend_from_slice(field);
        }
        data.extend_from_slice(&10u32.to_le_bytes());
        data.extend_from_slice(&HashAlg::Sha1.digest(&fields));
        data.extend_from_slice(&6u32.to_le_bytes());
        data.extend_from_slice(b"ima-ng");
        data.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        data.extend_from_slice(&fields);
        data
    }

    #[test]
    fn only_entries_after_the_offset_are_sent_and_a_shorter_list_is_sent_whole() {
        let list: Vec<u8> = ["/a", "/b", "/c"]
            .iter()
            .flat_map(|n| binary_entry(n))
            .collect();
        let one = binary_entry("/a").len();
        assert_eq!(
            slice_from(list.clone(), 0, HashAlg::Sha1),
            (0, list.clone())
        );
        assert_eq!(
            slice_from(list.clone(), 1, HashAlg::Sha1),
            (1, list[one..].to_vec())
        );
        assert_eq!(slice_from(list.clone(), 3, HashAlg::Sha1), (3, Vec::new()));
        assert_eq!(slice_from(list.clone(), 4, HashAlg::Sha1), (0, list));
    }

    #[test]
    fn ascii_lists_are_sliced_by_line() {
        let list = b"10 aa ima-ng sha1:00 /a\n10 bb ima-ng sha1:00 /b\n".to_vec();
        assert_eq!(
            slice_from(list.clone(), 1, HashAlg::Sha1),
            (1, b"10 bb ima-ng sha1:00 /b\n".to_vec())
        );
        assert_eq!(slice_from(list.clone(), 2, HashAlg::Sha1), (2, Vec::new()));
        assert_eq!(slice_from(list.clone(), 3, HashAlg::Sha1), (0, list));
    }

    #[test]
    fn a_missing_list_is_reported_not_fatal_and_per_bank_lists_name_their_hash() {
        let log = read_ima_log(
            Path::new("/nonexistent/vigil/binary_runtime_measurements"),
            0,
        );
        assert!(!log.present);
        assert!(log.note.contains("no IMA list"));
        assert_eq!(log.template_hash, "sha1");
        assert_eq!(
            template_hash_of(Path::new("/x/binary_runtime_measurements_sha256")),
            HashAlg::Sha256
        );
    }
}

//! TCG PC Client event log parsing: the SHA-1 format (TCG_PCR_EVENT, also TPM 1.2 logs) and
//! the crypto-agile format (a TCG_PCR_EVENT carrying "Spec ID Event03", then TCG_PCR_EVENT2
//! records with one digest per algorithm the header declares). Event logs are little-endian.
//!
//! The log ends at the end of the input, or where only zero (or 0xFF) padding remains:
//! sysfs dumps and firmware buffers are often padded, and an all-zero record is not a
//! meaningful event. Parsing never decides anything about trust.

use serde::Serialize;

use crate::evidence::tpm::HashAlg;

/// Largest event log accepted.
pub const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;
/// Most events accepted (real logs have tens to a few thousand).
pub const MAX_EVENTS: usize = 100_000;
/// Most digest algorithms a Spec ID header may declare.
pub const MAX_ALGORITHMS: usize = 16;
/// Largest digest size accepted from a Spec ID header.
pub const MAX_DIGEST_SIZE: usize = 64;

pub const EV_NO_ACTION: u32 = 0x0000_0003;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("event log of {size} bytes exceeds the limit of {MAX_LOG_BYTES}")]
    TooLarge { size: usize },
    #[error("event log is empty")]
    Empty,
    #[error(
        "event {event} at offset {offset}: truncated reading {field} (need {needed} bytes, {available} left)"
    )]
    Truncated {
        event: usize,
        offset: usize,
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("event {event} at offset {offset}: {field}: {reason}")]
    Invalid {
        event: usize,
        offset: usize,
        field: &'static str,
        reason: String,
    },
    #[error("more than {MAX_EVENTS} events")]
    TooManyEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LogFormat {
    /// TCG_PCR_EVENT records, SHA-1 digests only.
    #[serde(rename = "sha1")]
    Sha1,
    /// Spec ID Event03 header, then TCG_PCR_EVENT2 records.
    #[serde(rename = "crypto-agile")]
    CryptoAgile,
}

/// One digest algorithm of a crypto-agile log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogAlgorithm {
    pub id: u16,
    pub size: u16,
    /// None for algorithms Vigil cannot compute (they are parsed, not replayed).
    pub hash: Option<HashAlg>,
}

/// One event, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 0 for the first record (the Spec ID header of a crypto-agile log).
    pub number: usize,
    pub offset: usize,
    pub pcr: u32,
    pub event_type: u32,
    /// (algorithm id, digest), in record order.
    pub digests: Vec<(u16, Vec<u8>)>,
    pub data: Vec<u8>,
}

impl Event {
    pub fn digest(&self, id: u16) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|(a, _)| *a == id)
            .map(|(_, d)| d.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    pub format: LogFormat,
    pub algorithms: Vec<LogAlgorithm>,
    pub events: Vec<Event>,
}

struct Cursor<'a> {
    data: &'a [u8],
    position: usize,
    event: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], ParseError> {
        let slice = self
            .position
            .checked_add(count)
            .and_then(|end| self.data.get(self.position..end))
            .ok_or(ParseError::Truncated {
                event: self.event,
                offset: self.position,
                field,
                needed: count,
                available: self.data.len().saturating_sub(self.position),
            })?;
        self.position += count;
        Ok(slice)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        Ok(self.take(1, field)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2, field)?);
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, field)?);
        Ok(u32::from_le_bytes(b))
    }

    fn invalid(&self, offset: usize, field: &'static str, reason: String) -> ParseError {
        ParseError::Invalid {
            event: self.event,
            offset,
            field,
            reason,
        }
    }

    /// True when nothing but padding remains.
    fn at_end(&self) -> bool {
        let rest = self.data.get(self.position..).unwrap_or_default();
        rest.iter().all(|b| *b == 0) || rest.iter().all(|b| *b == 0xff)
    }
}

/// Parses an event log of either format.
pub fn parse(data: &[u8]) -> Result<EventLog, ParseError> {
    if data.len() > MAX_LOG_BYTES {
        return Err(ParseError::TooLarge { size: data.len() });
    }
    let mut cursor = Cursor {
        data,
        position: 0,
        event: 0,
    };
    if cursor.at_end() {
        return Err(ParseError::Empty);
    }
    let mut first = sha1_event(&mut cursor)?;
    let mut events = Vec::new();
    // Quirk: some producers write a Spec ID header whose eventSize leaves out the vendor
    // info that follows it. The header's own vendorInfoSize says how long it really is; take
    // exactly those bytes, so the next record starts where the producer wrote it.
    if first.event_type == EV_NO_ACTION
        && first.data.starts_with(b"Spec ID Event03\0")
        && let Some(missing) =
            spec_id_declared_len(&first.data).and_then(|n| n.checked_sub(first.data.len()))
        && missing > 0
        && missing <= 255
    {
        let overflow = cursor.take(missing, "SpecID.vendorInfo")?;
        first.data.extend_from_slice(overflow);
    }
    let spec_id = (first.event_type == EV_NO_ACTION
        && first.data.starts_with(b"Spec ID Event03\0"))
    .then(|| spec_id_algorithms(&first))
    .transpose()?;
    let format = if spec_id.is_some() {
        LogFormat::CryptoAgile
    } else {
        LogFormat::Sha1
    };
    let algorithms = spec_id.unwrap_or_else(|| {
        vec![LogAlgorithm {
            id: HashAlg::Sha1.id(),
            size: 20,
            hash: Some(HashAlg::Sha1),
        }]
    });
    events.push(first);
    while !cursor.at_end() {
        if events.len() >= MAX_EVENTS {
            return Err(ParseError::TooManyEvents);
        }
        cursor.event = events.len();
        let event = match format {
            LogFormat::Sha1 => sha1_event(&mut cursor)?,
            LogFormat::CryptoAgile => agile_event(&mut cursor, &algorithms)?,
        };
        events.push(event);
    }
    Ok(EventLog {
        format,
        algorithms,
        events,
    })
}

fn event_data<'a>(cursor: &mut Cursor<'a>) -> Result<&'a [u8], ParseError> {
    let offset = cursor.position;
    let size = cursor.u32("eventSize")? as usize;
    let available = cursor.data.len().saturating_sub(cursor.position);
    if size > available {
        return Err(cursor.invalid(
            offset,
            "eventSize",
            format!("{size} bytes of event data, only {available} left in the log"),
        ));
    }
    cursor.take(size, "event data")
}

fn sha1_event(cursor: &mut Cursor<'_>) -> Result<Event, ParseError> {
    let offset = cursor.position;
    let pcr = cursor.u32("pcrIndex")?;
    let event_type = cursor.u32("eventType")?;
    let digest = cursor.take(20, "digest")?.to_vec();
    let data = event_data(cursor)?.to_vec();
    Ok(Event {
        number: cursor.event,
        offset,
        pcr,
        event_type,
        digests: vec![(HashAlg::Sha1.id(), digest)],
        data,
    })
}

fn agile_event(cursor: &mut Cursor<'_>, algorithms: &[LogAlgorithm]) -> Result<Event, ParseError> {
    let offset = cursor.position;
    let pcr = cursor.u32("pcrIndex")?;
    let event_type = cursor.u32("eventType")?;
    let count_offset = cursor.position;
    let count = cursor.u32("digests.count")? as usize;
    if count > algorithms.len() {
        return Err(cursor.invalid(
            count_offset,
            "digests.count",
            format!(
                "{count} digests, but the header declares {} algorithms",
                algorithms.len()
            ),
        ));
    }
    let mut digests = Vec::with_capacity(count);
    for _ in 0..count {
        let alg_offset = cursor.position;
        let id = cursor.u16("digests.hashAlg")?;
        let algorithm = algorithms.iter().find(|a| a.id == id).ok_or_else(|| {
            cursor.invalid(
                alg_offset,
                "digests.hashAlg",
                format!("algorithm 0x{id:04x} is not declared in the Spec ID header"),
            )
        })?;
        if digests.iter().any(|(a, _)| *a == id) {
            return Err(cursor.invalid(
                alg_offset,
                "digests.hashAlg",
                format!("algorithm 0x{id:04x} appears twice"),
            ));
        }
        digests.push((
            id,
            cursor
                .take(usize::from(algorithm.size), "digests.digest")?
                .to_vec(),
        ));
    }
    let data = event_data(cursor)?.to_vec();
    Ok(Event {
        number: cursor.event,
        offset,
        pcr,
        event_type,
        digests,
        data,
    })
}

/// The length a Spec ID header says it has, from its algorithm count and vendorInfoSize.
fn spec_id_declared_len(data: &[u8]) -> Option<usize> {
    let count = u32::from_le_bytes(data.get(24..28)?.try_into().ok()?) as usize;
    if count > MAX_ALGORITHMS {
        return None;
    }
    let vendor_size_at = 28 + 4 * count;
    let vendor_size = usize::from(*data.get(vendor_size_at)?);
    Some(vendor_size_at + 1 + vendor_size)
}

/// The algorithm table of a "Spec ID Event03" header (TCG_EfiSpecIDEvent).
fn spec_id_algorithms(header: &Event) -> Result<Vec<LogAlgorithm>, ParseError> {
    let mut cursor = Cursor {
        data: &header.data,
        position: 0,
        event: 0,
    };
    let base = header.offset + 32; // fields of the header event before its data
    let located = |e: ParseError| match e {
        ParseError::Truncated {
            field,
            needed,
            available,
            offset,
            ..
        } => ParseError::Truncated {
            event: 0,
            offset: base + offset,
            field,
            needed,
            available,
        },
        ParseError::Invalid {
            field,
            reason,
            offset,
            ..
        } => ParseError::Invalid {
            event: 0,
            offset: base + offset,
            field,
            reason,
        },
        other => other,
    };
    cursor.take(16, "SpecID.signature").map_err(located)?;
    cursor.u32("SpecID.platformClass").map_err(located)?;
    cursor.take(3, "SpecID.specVersion").map_err(located)?;
    cursor.u8("SpecID.uintnSize").map_err(located)?;
    let count_offset = cursor.position;
    let count = cursor.u32("SpecID.numberOfAlgorithms").map_err(located)? as usize;
    if count == 0 || count > MAX_ALGORITHMS {
        return Err(located(cursor.invalid(
            count_offset,
            "SpecID.numberOfAlgorithms",
            format!("{count} algorithms (1..={MAX_ALGORITHMS} allowed)"),
        )));
    }
    let mut algorithms = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = cursor.position;
        let id = cursor.u16("SpecID.algorithmId").map_err(located)?;
        let size = cursor.u16("SpecID.digestSize").map_err(located)?;
        let hash = HashAlg::from_id(id);
        let sane = usize::from(size) <= MAX_DIGEST_SIZE && size > 0;
        let consistent = hash.is_none_or(|h| h.digest_len() == usize::from(size));
        if !sane || !consistent {
            return Err(located(cursor.invalid(
                offset,
                "SpecID.digestSize",
                format!("algorithm 0x{id:04x} with digest size {size}"),
            )));
        }
        algorithms.push(LogAlgorithm {
            id,
            size,
            hash: hash.filter(|h| h.ring().is_some()),
        });
    }
    Ok(algorithms)
}

//! What can be wrong with a measurement list, and where.

/// A list that cannot be read. Every variant says where: the entry number (from 0, counted
/// from the first entry given) and its byte offset (binary) or line (ASCII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("entry {entry} at offset {offset}: {field}: {reason}")]
    Binary {
        entry: u64,
        offset: usize,
        field: &'static str,
        reason: String,
    },
    #[error("line {line}: {field}: {reason}")]
    Ascii {
        line: usize,
        field: &'static str,
        reason: String,
    },
    #[error("the list has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("the list is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
}

/// Template data that does not decode into the fields its template names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: field {field}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub field: &'static str,
    pub reason: String,
}

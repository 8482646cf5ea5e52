//! Hashes serialize as lowercase hex in JSON, not as arrays of numbers.

use serde::Serializer;

pub fn hash<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

pub fn hashes<S: Serializer>(hs: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(hs.iter().map(hex::encode))
}

//! Byte strings as lowercase hex in JSON, the way NVIDIA's tools and Vigil's other outputs
//! show digests.

use serde::Serializer;

pub(crate) fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

pub(crate) fn serialize_opt<S: Serializer, T: AsRef<[u8]>>(
    bytes: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

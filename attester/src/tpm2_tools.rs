//! Writes a quote in the file formats of tpm2-tools, so `tpm2_checkquote` can check a
//! Vigil quote independently: SubjectPublicKeyInfo PEM for the AK, and tpm2-tools'
//! "serialized" PCR file (what `tpm2_quote -o` writes by default).

use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::Public;

use crate::tpm::{PcrValues, TpmError, bank_name};

/// DER SubjectPublicKeyInfo of an RSA or NIST P-256/P-384 AK, PEM-armoured.
pub fn ak_public_pem(public: &Public) -> Result<String, TpmError> {
    let der = match public {
        Public::Ecc {
            parameters, unique, ..
        } => {
            let (curve_oid, size): (&[u8], usize) = match parameters.ecc_curve() {
                tss_esapi::interface_types::ecc::EccCurve::NistP256 => {
                    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 32)
                }
                tss_esapi::interface_types::ecc::EccCurve::NistP384 => {
                    (&[0x2b, 0x81, 0x04, 0x00, 0x22], 48)
                }
                other => {
                    return Err(TpmError::Request(format!(
                        "AK curve {other:?} has no PEM export"
                    )));
                }
            };
            let mut point = vec![0x04];
            point.extend(left_pad(unique.x().value(), size)?);
            point.extend(left_pad(unique.y().value(), size)?);
            let algorithm = der(
                0x30,
                &[
                    der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
                    der(0x06, curve_oid),
                ]
                .concat(),
            );
            der(0x30, &[algorithm, bit_string(&point)].concat())
        }
        Public::Rsa {
            parameters, unique, ..
        } => {
            let exponent = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let key = der(
                0x30,
                &[
                    der_unsigned_integer(unique.value()),
                    der_unsigned_integer(&exponent.to_be_bytes()),
                ]
                .concat(),
            );
            let algorithm = der(
                0x30,
                &[
                    der(
                        0x06,
                        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                    ),
                    der(0x05, &[]),
                ]
                .concat(),
            );
            der(0x30, &[algorithm, bit_string(&key)].concat())
        }
        _ => return Err(TpmError::Request("the AK is neither RSA nor ECC".into())),
    };
    Ok(pem("PUBLIC KEY", &der))
}

/// tpm2-tools' serialized PCR file: the C structures TPML_PCR_SELECTION, a UINT32 count
/// of TPML_DIGEST, then the TPML_DIGESTs (8 digests each), written in host byte order
/// (little-endian on the platforms Vigil supports) with C struct padding. This layout is
/// what tpm2-tools 5.x reads back; it was checked byte for byte against `tpm2_quote -o`.
pub fn serialized_pcrs(
    selection: &[(HashingAlgorithm, Vec<u32>)],
    values: &PcrValues,
) -> Result<Vec<u8>, TpmError> {
    const MAX_SELECTIONS: usize = 16; // TPM2_NUM_PCR_BANKS
    const SELECTION_SIZE: usize = 8; // UINT16 hash, UINT8 sizeofSelect, BYTE[4], 1 pad
    const DIGESTS_PER_LIST: usize = 8;
    const DIGEST_SLOT: usize = 2 + 64; // UINT16 size + BYTE[sizeof(TPMU_HA)]
    if selection.len() > MAX_SELECTIONS {
        return Err(TpmError::Request("more than 16 PCR banks selected".into()));
    }
    let mut out = Vec::new();
    out.extend((selection.len() as u32).to_le_bytes());
    let mut digests = Vec::new();
    for (alg, indices) in selection {
        let mut bitmap = [0u8; 4];
        for &index in indices {
            let byte = bitmap
                .get_mut((index / 8) as usize)
                .ok_or_else(|| TpmError::Request(format!("PCR {index} out of range")))?;
            *byte |= 1 << (index % 8);
            let digest = values
                .get(bank_name(*alg))
                .and_then(|bank| bank.get(&index))
                .ok_or_else(|| {
                    TpmError::Request(format!("no value read for PCR {index} of a quoted bank"))
                })?;
            digests.push(digest.as_slice());
        }
        out.extend(u16::from(tss_esapi::constants::AlgorithmIdentifier::from(*alg)).to_le_bytes());
        out.push(3);
        out.extend(bitmap);
        out.push(0);
    }
    out.resize(4 + MAX_SELECTIONS * SELECTION_SIZE, 0);
    let lists = digests.chunks(DIGESTS_PER_LIST);
    out.extend((lists.len() as u32).to_le_bytes());
    for list in lists {
        out.extend((list.len() as u32).to_le_bytes());
        for slot in 0..DIGESTS_PER_LIST {
            let mut entry = [0u8; DIGEST_SLOT];
            if let Some(digest) = list.get(slot) {
                let (size, buffer) = entry.split_at_mut(2);
                size.copy_from_slice(&(digest.len() as u16).to_le_bytes());
                buffer
                    .get_mut(..digest.len())
                    .ok_or_else(|| TpmError::Request("PCR digest longer than 64 bytes".into()))?
                    .copy_from_slice(digest);
            }
            out.extend(entry);
        }
    }
    Ok(out)
}

fn left_pad(value: &[u8], size: usize) -> Result<Vec<u8>, TpmError> {
    if value.len() > size {
        return Err(TpmError::Request(format!(
            "ECC coordinate of {} bytes exceeds {size}",
            value.len()
        )));
    }
    let mut out = vec![0u8; size - value.len()];
    out.extend_from_slice(value);
    Ok(out)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(0x03, &[&[0u8][..], bytes].concat())
}

pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn der_lengths_use_long_form_above_127() {
        assert_eq!(der(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn der_integers_are_positive_and_minimal() {
        assert_eq!(der_unsigned_integer(&[0x00, 0x01]), vec![0x02, 1, 0x01]);
        assert_eq!(der_unsigned_integer(&[0x80]), vec![0x02, 2, 0x00, 0x80]);
    }

    #[test]
    fn serialized_pcrs_have_the_tpm2_tools_layout() {
        let selection = vec![
            (HashingAlgorithm::Sha1, vec![0, 1]),
            (HashingAlgorithm::Sha256, vec![0, 16, 23]),
        ];
        let mut values = BTreeMap::new();
        values.insert(
            "sha1",
            BTreeMap::from([(0, vec![0u8; 20]), (1, vec![0u8; 20])]),
        );
        values.insert(
            "sha256",
            BTreeMap::from([(0, vec![0u8; 32]), (16, vec![0u8; 32]), (23, vec![0u8; 32])]),
        );
        let out = serialized_pcrs(&selection, &values).unwrap();
        // Same size and header as a file written by `tpm2_quote -l sha1:0,1+sha256:0,16,23 -o`.
        assert_eq!(out.len(), 668);
        assert_eq!(
            out[..20],
            [
                2, 0, 0, 0, 4, 0, 3, 3, 0, 0, 0, 0, 0x0b, 0, 3, 1, 0, 0x81, 0, 0
            ]
        );
        assert_eq!(out[132..140], [1, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(out[140..142], [20, 0]);
    }
}

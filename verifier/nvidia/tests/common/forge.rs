//! Test-only forgery: X.509 certificates and SPDM reports signed with fresh P-384 keys, to
//! reach the checks that real evidence never trips (non-CA issuers, missing key usage,
//! path length, unknown critical extensions, FWID mismatches).
#![allow(dead_code)]

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend(content);
    out
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
pub const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
pub const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
pub const OID_TCG_DICE_TCB_INFO: &[u8] = &[0x67, 0x81, 0x05, 0x05, 0x04, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];

pub const KU_DIGITAL_SIGNATURE: u8 = 0x80;
pub const KU_KEY_CERT_SIGN: u8 = 0x04;

fn name(cn: &str) -> Vec<u8> {
    seq(&[tlv(
        0x31,
        &seq(&[tlv(0x06, OID_CN), tlv(0x0c, cn.as_bytes())]),
    )])
}

fn time(secs: i64) -> Vec<u8> {
    let t = vigil_nvidia::format_rfc3339(secs); // YYYY-MM-DDTHH:MM:SSZ
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if digits[..4].parse::<u32>().unwrap() < 2050 {
        tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(0x18, format!("{digits}Z").as_bytes())
    }
}

pub struct Key {
    pub pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl Key {
    pub fn generate() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        Key {
            pair,
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    pub fn public(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Raw r‖s, as SPDM responders sign.
    pub fn sign_fixed(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        let fixed =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &self.pkcs8).unwrap();
        fixed.sign(&rng, msg).unwrap().as_ref().to_vec()
    }
}

pub struct Spec<'a> {
    pub cn: &'a str,
    /// `None`: no basicConstraints; `Some((ca, pathlen))`.
    pub basic_constraints: Option<(bool, Option<u8>)>,
    pub key_usage: Option<u8>,
    pub not_before: i64,
    pub not_after: i64,
    /// (OID content, critical, value)
    pub extra: Vec<(Vec<u8>, bool, Vec<u8>)>,
}

impl<'a> Spec<'a> {
    pub fn ca(cn: &'a str) -> Self {
        Spec {
            cn,
            basic_constraints: Some((true, None)),
            key_usage: Some(KU_KEY_CERT_SIGN),
            not_before: 1_600_000_000,
            not_after: 4_000_000_000,
            extra: vec![],
        }
    }

    pub fn leaf(cn: &'a str) -> Self {
        Spec {
            basic_constraints: None,
            key_usage: Some(KU_DIGITAL_SIGNATURE),
            ..Spec::ca(cn)
        }
    }
}

pub struct Cert {
    pub der: Vec<u8>,
    pub key: Key,
    pub cn: String,
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![tlv(0x06, oid)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, value));
    seq(&parts)
}

/// Issues a certificate for `spec`, signed by `issuer` (self-signed when `None`).
pub fn issue(spec: &Spec<'_>, issuer: Option<&Cert>) -> Cert {
    let key = Key::generate();
    let sig_alg = seq(&[tlv(0x06, OID_ECDSA_SHA384)]);
    let mut point = vec![0u8];
    point.extend(key.public());
    let spki = seq(&[
        seq(&[tlv(0x06, OID_EC_PUBLIC_KEY), tlv(0x06, OID_SECP384R1)]),
        tlv(0x03, &point),
    ]);
    let mut exts = Vec::new();
    if let Some((ca, pathlen)) = spec.basic_constraints {
        let mut inner = Vec::new();
        if ca {
            inner.push(vec![0x01, 0x01, 0xff]);
        }
        if let Some(p) = pathlen {
            inner.push(vec![0x02, 0x01, p]);
        }
        exts.push(extension(OID_BASIC_CONSTRAINTS, true, &seq(&inner)));
    }
    if let Some(bits) = spec.key_usage {
        let unused = bits.trailing_zeros().min(7) as u8;
        exts.push(extension(OID_KEY_USAGE, true, &tlv(0x03, &[unused, bits])));
    }
    for (oid, critical, value) in &spec.extra {
        exts.push(extension(oid, *critical, value));
    }
    let issuer_cn = issuer.map_or(spec.cn, |i| i.cn.as_str());
    let tbs = seq(&[
        tlv(0xa0, &[0x02, 0x01, 0x02]),
        vec![0x02, 0x02, 0x01, rand_byte()],
        sig_alg.clone(),
        name(issuer_cn),
        seq(&[time(spec.not_before), time(spec.not_after)]),
        name(spec.cn),
        spki,
        tlv(0xa3, &seq(&exts)),
    ]);
    let rng = SystemRandom::new();
    let signer = issuer.map_or(&key.pair, |i| &i.key.pair);
    let signature = signer.sign(&rng, &tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend(signature.as_ref());
    let der = seq(&[tbs, sig_alg, tlv(0x03, &bits)]);
    Cert {
        der,
        key,
        cn: spec.cn.to_string(),
    }
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    b[0] & 0x7f
}

/// Hopper-style composite device ID extension value carrying `fwid`.
pub fn dice_fwid_extension(fwid: &[u8]) -> Vec<u8> {
    seq(&[
        vec![0x02, 0x01, 0x01],
        seq(&[]),
        seq(&[tlv(0x06, OID_SHA384), tlv(0x04, fwid)]),
    ])
}

pub fn pem(ders: &[&[u8]]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for der in ders {
        let mut text = String::new();
        for chunk in der.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    text.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    text.push('=');
                }
            }
        }
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

pub const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
pub const OID_KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
const OID_OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

pub enum Status {
    Good,
    Revoked(i64, u8),
    Unknown,
}

pub struct Ocsp<'a> {
    pub cert: &'a Cert,
    pub issuer: &'a Cert,
    pub signer: &'a Cert,
    pub by_key: bool,
    pub status: Status,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub embed: Vec<&'a [u8]>,
    pub sha1: bool,
    pub nonce: Option<Vec<u8>>,
    pub response_status: u8,
}

impl<'a> Ocsp<'a> {
    pub fn good(cert: &'a Cert, issuer: &'a Cert, now: i64) -> Self {
        Ocsp {
            cert,
            issuer,
            signer: issuer,
            by_key: false,
            status: Status::Good,
            this_update: now - 3600,
            next_update: Some(now + 3600),
            embed: vec![],
            sha1: false,
            nonce: None,
            response_status: 0,
        }
    }
}

fn gtime(secs: i64) -> Vec<u8> {
    let digits: String = vigil_nvidia::format_rfc3339(secs)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    tlv(0x18, format!("{digits}Z").as_bytes())
}

fn parsed(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(der)
        .unwrap()
        .1
}

pub fn ocsp_response(spec: &Ocsp<'_>) -> Vec<u8> {
    let cert = parsed(&spec.cert.der);
    let issuer = parsed(&spec.issuer.der);
    let signer = parsed(&spec.signer.der);
    let (alg_oid, digest) = if spec.sha1 {
        (OID_SHA1, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY)
    } else {
        (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02][..],
            &ring::digest::SHA384,
        )
    };
    let h = |data: &[u8]| ring::digest::digest(digest, data).as_ref().to_vec();
    let cert_id = seq(&[
        seq(&[tlv(0x06, alg_oid), vec![0x05, 0x00]]),
        tlv(0x04, &h(issuer.subject().as_raw())),
        tlv(0x04, &h(&issuer.public_key().subject_public_key.data)),
        tlv(0x02, cert.tbs_certificate.raw_serial()),
    ]);
    let status = match spec.status {
        Status::Good => vec![0x80, 0x00],
        Status::Unknown => vec![0x82, 0x00],
        Status::Revoked(at, reason) => tlv(
            0xa1,
            &[gtime(at), tlv(0xa0, &[0x0a, 0x01, reason])].concat(),
        ),
    };
    let mut single = vec![cert_id, status, gtime(spec.this_update)];
    if let Some(next) = spec.next_update {
        single.push(tlv(0xa0, &gtime(next)));
    }
    let responder = if spec.by_key {
        let key_hash = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &signer.public_key().subject_public_key.data,
        );
        tlv(0xa2, &tlv(0x04, key_hash.as_ref()))
    } else {
        tlv(0xa1, signer.subject().as_raw())
    };
    let mut data = vec![responder, gtime(spec.this_update), seq(&[seq(&single)])];
    if let Some(nonce) = &spec.nonce {
        let ext = seq(&[tlv(0x06, OID_OCSP_NONCE), tlv(0x04, &tlv(0x04, nonce))]);
        data.push(tlv(0xa1, &seq(&[ext])));
    }
    let tbs = seq(&data);
    let rng = SystemRandom::new();
    let signature = spec.signer.key.pair.sign(&rng, &tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend(signature.as_ref());
    let mut basic = vec![
        tbs,
        seq(&[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03])]),
        tlv(0x03, &bits),
    ];
    if !spec.embed.is_empty() {
        basic.push(tlv(
            0xa0,
            &seq(&spec.embed.iter().map(|d| d.to_vec()).collect::<Vec<_>>()),
        ));
    }
    let bytes = seq(&[tlv(0x06, OID_OCSP_BASIC), tlv(0x04, &seq(&basic))]);
    seq(&[vec![0x0a, 0x01, spec.response_status], tlv(0xa0, &bytes)])
}

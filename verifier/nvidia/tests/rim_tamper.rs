//! The XML-DSig checks of a RIM made to fail one by one on a real RIM, and the
//! canonicalization shown to ignore what Canonical XML ignores (attribute order, quotes,
//! empty-element syntax, comments) while catching every change of content.

mod common;

use common::*;
use vigil_nvidia::rim::check_rim_signature;
use vigil_nvidia::rim::xmldsig::XmlDsigError;
use vigil_nvidia::roots::rim_root_der;

const RIM: &str = "NV_GPU_DRIVER_GH100_550.90.07.swidtag";

fn original() -> Option<String> {
    let dir = fixtures()?;
    Some(read_text(&dir, &format!("{RIMS_MATCHING}/{RIM}")))
}

fn check(xml: &str) -> Result<(), XmlDsigError> {
    let when = at("2026-05-01T00:00:00Z");
    check_rim_signature("test", xml, &rim_root_der(), when).signature
}

fn replaced(xml: &str, from: &str, to: &str) -> String {
    assert!(xml.contains(from), "{from} not in the RIM");
    xml.replacen(from, to, 1)
}

#[test]
fn the_untouched_rim_verifies() {
    let Some(xml) = original() else { return };
    assert_eq!(check(&xml), Ok(()));
}

#[test]
fn equivalent_serializations_still_verify() {
    let Some(xml) = original() else { return };
    // Attribute order, quote style, empty-element syntax, comments, an XML declaration and
    // whitespace inside tags are not content.
    let reordered = replaced(
        &xml,
        r#"corpus="false" name="GH100""#,
        r#"name='GH100'   corpus="false""#,
    );
    let expanded = replaced(
        &reordered,
        r#"<ns0:Entity name="NVIDIA Corporation" role="softwareCreator tagCreator"/>"#,
        r#"<ns0:Entity role="softwareCreator tagCreator" name="NVIDIA Corporation" ></ns0:Entity><!-- a comment -->"#,
    );
    let declared =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- before -->\n{expanded}");
    assert_eq!(check(&declared), Ok(()));
}

#[test]
fn any_content_change_breaks_the_digest() {
    let Some(xml) = original() else { return };
    for (from, to) in [
        // A golden value.
        (
            "80161aac5e7509f038a6457b111e048207d1dc0e78edbb8c172fca4139c1d5f29cda67ecdd261fdc9203b76387f7389f",
            "80161aac5e7509f038a6457b111e048207d1dc0e78edbb8c172fca4139c1d5f29cda67ecdd261fdc9203b76387f7389e",
        ),
        // Turning a measurement off.
        (r#"index="7" active="True""#, r#"index="7" active="False""#),
        // The version.
        (
            r#"colloquialVersion="550.90.07""#,
            r#"colloquialVersion="550.90.08""#,
        ),
        // Whitespace in text content is content.
        ("\n    <ns0:Entity", "\n     <ns0:Entity"),
    ] {
        match check(&replaced(&xml, from, to)) {
            Err(XmlDsigError::DigestMismatch { .. }) => {}
            other => panic!("{from}: {other:?}"),
        }
    }
}

#[test]
fn signature_value_and_signer_are_checked() {
    let Some(xml) = original() else { return };
    let sig_start = xml.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut bytes = xml.clone().into_bytes();
    bytes[sig_start + 10] = if bytes[sig_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert_eq!(
        check(&String::from_utf8(bytes).unwrap()),
        Err(XmlDsigError::BadSignature)
    );
    // A change inside SignedInfo (the digest value) is caught by the digest first.
    let digest = xml
        .split("<ds:DigestValue>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let other_digest = format!("A{}", &digest[1..]);
    assert!(check(&replaced(&xml, digest, &other_digest)).is_err());
    // Another signer's certificate first in KeyInfo.
    let dir = fixtures().unwrap();
    let vbios = read_text(
        &dir,
        &format!("{RIMS_MATCHING}/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag"),
    );
    let leaf = |x: &str| {
        x.split("<ds:X509Certificate>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    let swapped = replaced(&xml, &leaf(&xml), &leaf(&vbios));
    assert_eq!(check(&swapped), Err(XmlDsigError::BadSignature));
}

#[test]
fn only_nvidias_algorithms_are_accepted() {
    let Some(xml) = original() else { return };
    let cases = [
        (
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
        ),
        (
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        ),
        (
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384"/>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>"#,
        ),
        (
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>"#,
        ),
    ];
    for (from, to) in cases {
        match check(&replaced(&xml, from, to)) {
            Err(XmlDsigError::Algorithm { .. }) => {}
            other => panic!("{to}: {other:?}"),
        }
    }
}

#[test]
fn signature_structure_is_strict() {
    let Some(xml) = original() else { return };
    let start = xml.find("<ds:Signature ").unwrap();
    let end = xml.find("</SoftwareIdentity>").unwrap();
    let signature = xml[start..end].to_string();
    let cases: Vec<(&str, String)> = vec![
        (
            "reference to an ID",
            replaced(
                &xml,
                r#"<ds:Reference URI="">"#,
                r##"<ds:Reference URI="#x">"##,
            ),
        ),
        (
            "one transform only",
            replaced(
                &xml,
                r#"<ds:Transform Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>"#,
                "",
            ),
        ),
        (
            "two references",
            replaced(
                &xml,
                "</ds:SignedInfo>",
                r#"<ds:Reference URI=""/></ds:SignedInfo>"#,
            ),
        ),
        ("no signature", xml.replace(&signature, "")),
        // Signature wrapping: a second (copied) signature elsewhere in the document.
        (
            "wrapped copy",
            replaced(&xml, "<ns0:Payload ", &format!("{signature}<ns0:Payload ")),
        ),
        // Not enveloped: the signature moved inside Payload.
        (
            "not enveloped",
            replaced(
                &xml.replace(&signature, ""),
                "</ns0:Payload>",
                &format!("{signature}</ns0:Payload>"),
            ),
        ),
        (
            "no certificates",
            xml.replace("<ds:X509Certificate>", "<ds:X509CertificateX>")
                .replace("</ds:X509Certificate>", "</ds:X509CertificateX>"),
        ),
    ];
    for (what, tampered) in cases {
        match check(&tampered) {
            Err(XmlDsigError::Structure(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let bad_base64 = replaced(&xml, "<ds:SignatureValue>", "<ds:SignatureValue>!");
    assert!(matches!(
        check(&bad_base64),
        Err(XmlDsigError::Encoding {
            field: "SignatureValue",
            ..
        })
    ));
}

#[test]
fn malformed_xml_never_panics() {
    let Some(xml) = original() else { return };
    for len in (0..xml.len()).step_by(251) {
        let Some(prefix) = xml.get(..len) else {
            continue;
        };
        assert!(check(prefix).is_err());
        let _ = vigil_nvidia::rim::parse_rim("t", prefix);
    }
}

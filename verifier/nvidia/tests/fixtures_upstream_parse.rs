//! Vigil's parse against NVIDIA's own expected parse of the same reports (attestation-sdk
//! unit-test data, JSON and text forms): every header field, every measurement block and
//! every opaque field must agree.

mod common;

use std::collections::BTreeMap;

use common::*;
use vigil_nvidia::opaque::OpaqueValue;
use vigil_nvidia::{AttestationReport, parse_report_input};

type Flat = BTreeMap<String, String>;

/// Vigil's parse in the shape of NVIDIA's expected output.
fn flatten_ours(r: &AttestationReport) -> Flat {
    let resp = &r.response;
    let mut m = Flat::new();
    let mut put = |k: String, v: String| {
        m.insert(k, v);
    };
    put("SPDMVersion".into(), format!("0x{:02x}", resp.spdm_version));
    put("RequestResponseCode".into(), "0x60".into());
    put("Param1".into(), format!("0x{:02x}", resp.param1));
    put("Param2".into(), format!("0x{:02x}", resp.param2));
    put("NumberOfBlocks".into(), resp.blocks.len().to_string());
    put(
        "MeasurementRecordLength".into(),
        resp.measurement_record_length.to_string(),
    );
    put("Nonce".into(), format!("0x{}", hex::encode(resp.nonce)));
    put("OpaqueLength".into(), resp.opaque_data_length.to_string());
    put(
        "Signature".into(),
        format!("0x{}", hex::encode(&resp.signature)),
    );
    for b in &resp.blocks {
        put(format!("Block[{}].Type", b.index), b.value_type.to_string());
        put(
            format!("Block[{}].Size", b.index),
            b.value.len().to_string(),
        );
        put(
            format!("Block[{}].Value", b.index),
            format!("0x{}", hex::encode(&b.value)),
        );
    }
    for f in &resp.opaque.fields {
        let name = f.nvidia_name;
        match &f.value {
            OpaqueValue::Counts(counts) => {
                for (i, c) in counts.iter().enumerate() {
                    put(format!("Opaque[{name}][{i}]"), c.to_string());
                }
            }
            OpaqueValue::SwitchTopology { gpu_pdis, ports } => {
                for (i, pdi) in gpu_pdis.iter().enumerate() {
                    put(format!("Opaque[{name}][{i}]"), format!("0x{pdi}"));
                }
                for (i, port) in ports.iter().enumerate() {
                    put(
                        format!("Opaque[OPAQUE_FIELD_ID_SWITCH_PORT][{i}]"),
                        format!("0x{port:02x}"),
                    );
                }
            }
            OpaqueValue::DisabledPorts(disabled) => {
                for port in 0..f.raw.len() * 32 {
                    let flag = u16::try_from(port).is_ok_and(|p| disabled.contains(&p));
                    put(
                        format!("Opaque[{name}][{port}]"),
                        u8::from(flag).to_string(),
                    );
                }
            }
            _ => put(
                format!("Opaque[{name}]"),
                format!("0x{}", hex::encode(&f.raw)),
            ),
        }
    }
    m
}

fn json_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flatten_json(text: &str) -> Flat {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut m = Flat::new();
    for key in [
        "SPDMVersion",
        "RequestResponseCode",
        "Param1",
        "Param2",
        "NumberOfBlocks",
        "MeasurementRecordLength",
        "Nonce",
        "OpaqueLength",
        "Signature",
    ] {
        m.insert(key.into(), json_scalar(&v[key]));
    }
    for (index, block) in v["MeasurementRecord"]["MeasurementBlocks"]
        .as_object()
        .unwrap()
    {
        m.insert(
            format!("Block[{index}].Type"),
            json_scalar(&block["DMTFSpecMeasurementValueType"]),
        );
        m.insert(
            format!("Block[{index}].Size"),
            json_scalar(&block["DMTFSpecMeasurementValueSize"]),
        );
        m.insert(
            format!("Block[{index}].Value"),
            json_scalar(&block["DMTFSpecMeasurementValue"]),
        );
    }
    for (name, value) in v["OpaqueData"]["OpaqueDataField"].as_object().unwrap() {
        match value {
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    m.insert(format!("Opaque[{name}][{i}]"), json_scalar(item));
                }
            }
            other => {
                m.insert(format!("Opaque[{name}]"), json_scalar(other));
            }
        }
    }
    m
}

/// `SpdmMeasurementResponseMessage.<path> = <value>` lines.
fn flatten_txt(text: &str) -> Flat {
    let mut m = Flat::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (path, value) = line.split_once(" = ").unwrap();
        let path = path
            .strip_prefix("SpdmMeasurementResponseMessage.")
            .unwrap();
        let key = if let Some(rest) = path.strip_prefix("MeasurementRecord.MeasurementBlocks[") {
            let (index, field) = rest.split_once("].").unwrap();
            let field = match field {
                "DMTFSpecMeasurementValueType" => "Type",
                "DMTFSpecMeasurementValueSize" => "Size",
                "DMTFSpecMeasurementValue" => "Value",
                other => panic!("{other}"),
            };
            format!("Block[{index}].{field}")
        } else if let Some(rest) = path.strip_prefix("OpaqueData.OpaqueDataField['") {
            let (name, tail) = rest.split_once("']").unwrap();
            format!("Opaque[{name}]{tail}")
        } else if path == "MeasurementRecord.NumberOfBlocks" {
            continue;
        } else {
            path.to_string()
        };
        m.insert(key, value.to_string());
    }
    m
}

/// Fields NVIDIA's expected output predates (its parser then did not know types 34 and 36);
/// Vigil decodes them, so they may appear only on our side.
const NEWER_FIELDS: [&str; 2] = [
    "Opaque[OPAQUE_FIELD_ID_OPAQUE_DATA_VERSION]",
    "Opaque[OPAQUE_FIELD_ID_FEATURE_FLAG]",
];

fn assert_same(ours: &Flat, theirs: &Flat, what: &str) {
    let only_ours: Vec<_> = ours
        .keys()
        .filter(|k| !theirs.contains_key(*k) && !NEWER_FIELDS.contains(&k.as_str()))
        .collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let differ: Vec<_> = ours
        .iter()
        .filter(|(k, v)| theirs.get(*k).is_some_and(|t| t != *v))
        .map(|(k, v)| format!("{k}: ours {v}, NVIDIA {}", theirs[k]))
        .collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty() && differ.is_empty(),
        "{what}: only ours {only_ours:?}; only NVIDIA's {only_theirs:?}; differ {differ:?}"
    );
    eprintln!("{what}: {} fields agree", ours.len());
}

#[test]
fn responses_match_nvidia_expected_parse() {
    let Some(dir) = fixtures() else { return };
    for (report, expected) in [
        (
            format!("{SDK_TESTDATA}/hopperAttestationReport.txt"),
            "spdm_parsed_output.json",
        ),
        (
            format!("{NV_LOCAL}/samples/hopperAttestationReport.txt"),
            "spdm_parsed_output.txt",
        ),
        (
            format!("{SDK_TESTDATA}/switchAttestationReport.txt"),
            "switch_spdm_parsed_output.json",
        ),
        (
            format!("{SDK_TESTDATA}/switchAttestationReport.txt"),
            "switch_spdm_parsed_output.txt",
        ),
    ] {
        let parsed = parse_report_input(&read(&dir, &report)).unwrap();
        let text = read_text(&dir, &format!("{SDK_TESTDATA}/{expected}"));
        let theirs = if expected.ends_with(".json") {
            flatten_json(&text)
        } else {
            flatten_txt(&text)
        };
        let ours = flatten_ours(&parsed);
        assert_same(&ours, &theirs, expected);
        if expected == "spdm_parsed_output.json" {
            assert_eq!(ours[NEWER_FIELDS[0]], "0x0100");
            assert_eq!(ours[NEWER_FIELDS[1]], "0x0000");
        }
    }
}

#[test]
fn requests_match_nvidia_expected_parse() {
    let Some(dir) = fixtures() else { return };
    for (report, expected) in [
        (
            format!("{SDK_TESTDATA}/hopperAttestationReport.txt"),
            "spdm_req_parsed_output.json",
        ),
        (
            format!("{SDK_TESTDATA}/switchAttestationReport.txt"),
            "switch_spdm_req_parsed_output.json",
        ),
    ] {
        let req = parse_report_input(&read(&dir, &report)).unwrap().request;
        let v: serde_json::Value =
            serde_json::from_str(&read_text(&dir, &format!("{SDK_TESTDATA}/{expected}"))).unwrap();
        assert_eq!(v["SPDMVersion"], format!("0x{:02x}", req.spdm_version));
        assert_eq!(v["RequestResponseCode"], "0xe0");
        assert_eq!(v["Param1"], format!("0x{:02x}", req.attributes));
        assert_eq!(v["Param2"], format!("0x{:02x}", req.measurement_operation));
        assert_eq!(v["Nonce"], format!("0x{}", hex::encode(req.nonce)));
        assert_eq!(v["SlotIDParam"], format!("0x{:02x}", req.slot_id));
    }
}

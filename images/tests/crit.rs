//! Cross-checks with CRIU's crit: rcr's images decode in crit to the JSON rcr prints, and
//! JSON encodes to the same bytes in both. Skips with a notice if crit is missing (fails
//! when CI=true).

mod fixtures;

use std::path::{Path, PathBuf};

use fixtures::*;
use rcr_images::{decode_dir, decode_file, encode, Kind};
use serde_json::Value;

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// crit's JSON with CRIU 4.2's names, and whether crit had CRIU 3.x's: 3.x calls pagemap
/// field 2 `nr_pages` and has no field 5, which 4.x calls `compat_nr_pages` and `nr_pages`
/// (rcr's names). Debian's crit is 3.17.
fn with_criu42_names(mut crit: Value) -> (Value, bool) {
    let mut legacy = false;
    if crit["magic"] == "PAGEMAP" {
        for e in crit["entries"].as_array_mut().unwrap().iter_mut().skip(1) {
            let e = e.as_object_mut().unwrap();
            if !e.contains_key("compat_nr_pages") {
                legacy = true;
                *e = e.iter().map(|(k, v)| (if k == "nr_pages" { "compat_nr_pages".into() } else { k.clone() }, v.clone())).collect();
            }
        }
    }
    (crit, legacy)
}

/// rcr's JSON as a CRIU 3.x crit would print it (field 5 left out) if `legacy`.
fn as_crit_prints(mut v: Value, legacy: bool) -> Value {
    if legacy && v["magic"] == "PAGEMAP" {
        for e in v["entries"].as_array_mut().unwrap().iter_mut().skip(1) {
            e.as_object_mut().unwrap().remove("nr_pages");
        }
    }
    v
}

/// The first place where two JSON values differ, as "path: a != b".
fn first_diff(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let xk: Vec<_> = x.keys().collect();
            let yk: Vec<_> = y.keys().collect();
            if xk != yk {
                return Some(format!("{path}: keys {xk:?} != {yk:?}"));
            }
            x.iter().find_map(|(k, v)| first_diff(&format!("{path}.{k}"), v, &y[k]))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_diff(&format!("{path}[{i}]"), v, w))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}

/// Equal values, with keys in the same order (crit's output order is part of its format).
fn assert_same_json(what: &str, rcr: &Value, crit: &Value) {
    if let Some(d) = first_diff("", rcr, crit) {
        panic!("{what}: rcr and crit disagree at {d}");
    }
}

/// Every kind crit knows, every field populated: decode (plain and pretty) equals crit's,
/// encode of crit's JSON equals crit's encode byte for byte and the original image.
#[test]
fn every_kind_fully_populated_matches_crit() {
    let Some(crit) = crit() else { return };
    let dir = tempdir();
    let mut cases: Vec<(Kind, PathBuf)> = Vec::new();
    for &kind in Kind::ALL.iter().filter(|k| crit_knows(**k)) {
        for alt in [false, true] {
            if alt && kind != Kind::GhostFile {
                continue;
            }
            let p = dir.path().join(format!("{}{}.img", kind.crit_name(), if alt { "-alt" } else { "" }));
            std::fs::write(&p, generic_image(kind, alt)).unwrap();
            cases.push((kind, p));
        }
    }
    let json_of = |p: &Path, pretty: bool| p.with_extension(if pretty { "pretty.json" } else { "json" });
    let crit_img = |p: &Path, pretty: bool| p.with_extension(if pretty { "pcrit.img" } else { "crit.img" });
    let mut jobs = Vec::new();
    for (_, p) in &cases {
        for pretty in [false, true] {
            jobs.push(("decode", p.clone(), json_of(p, pretty), pretty));
        }
    }
    crit_batch(&crit, &jobs);
    let mut jobs = Vec::new();
    for (kind, p) in &cases {
        if !crit_encode_broken(*kind) {
            for pretty in [false, true] {
                jobs.push(("encode", json_of(p, pretty), crit_img(p, pretty), pretty));
            }
        }
    }
    crit_batch(&crit, &jobs);

    for (kind, p) in &cases {
        let original = std::fs::read(p).unwrap();
        for pretty in [false, true] {
            let what = format!("{} (pretty={pretty})", p.display());
            let (crit_json, _) = with_criu42_names(read_json(&json_of(p, pretty)));
            let rcr_json = decode_file(p, pretty).unwrap();
            assert_same_json(&what, &rcr_json, &crit_json);
            let rcr_bytes = encode(&crit_json).unwrap();
            assert_eq!(rcr_bytes, original, "{what}: rcr encode of crit's JSON differs from the image");
            if !crit_encode_broken(*kind) {
                let crit_bytes = std::fs::read(crit_img(p, pretty)).unwrap();
                assert_eq!(rcr_bytes, crit_bytes, "{what}: rcr and crit encode differently");
                let back = decode_file(&crit_img(p, pretty), pretty).unwrap();
                assert_same_json(&format!("{what} re-decoded"), &back, &crit_json);
            }
        }
    }
}

/// A realistic dump written with rcr's typed API, checked with the crit command itself.
#[test]
fn realistic_dump_matches_crit_cli() {
    let Some(crit) = crit() else { return };
    let dir = tempdir();
    let names = write_realistic(dir.path());
    let all = decode_dir(dir.path(), false).unwrap();
    for name in names.iter().filter(|n| !n.starts_with("pages-")) {
        let path = dir.path().join(name);
        let p = path.to_str().unwrap();
        for pretty in [false, true] {
            let what = format!("{name} (pretty={pretty})");
            let mut args = vec!["decode", "-i", p];
            if pretty {
                args.push("--pretty");
            }
            let crit_printed: Value = serde_json::from_slice(&crit_run(&crit, &args)).unwrap();
            let (crit_json, legacy) = with_criu42_names(crit_printed.clone());
            let rcr_json = decode_file(&path, pretty).unwrap();
            if !pretty {
                assert_eq!(all[name.as_str()], rcr_json, "{name}: decode_dir differs from decode_file");
            }
            assert_same_json(&what, &as_crit_prints(rcr_json.clone(), legacy), &crit_json);

            // crit encode of crit's JSON == rcr encode of it; rcr decodes crit's bytes.
            let jpath = dir.path().join(format!("{name}.{pretty}.json"));
            std::fs::write(&jpath, serde_json::to_vec(&crit_printed).unwrap()).unwrap();
            let ipath = dir.path().join(format!("{name}.{pretty}.crit"));
            crit_run(&crit, &["encode", "-i", jpath.to_str().unwrap(), "-o", ipath.to_str().unwrap()]);
            let crit_bytes = std::fs::read(&ipath).unwrap();
            assert_eq!(encode(&crit_json).unwrap(), crit_bytes, "{what}: encode differs from crit's");
            assert_same_json(&format!("{what} crit-encoded"), &decode_file(&ipath, pretty).unwrap(), &crit_json);

            // rcr's own JSON (with pagemap field 5, which crit 3.x drops) gives back the original bytes.
            assert_eq!(encode(&rcr_json).unwrap(), std::fs::read(&path).unwrap(), "{what}: rcr JSON round trip");
        }
    }
    assert!(all.get("pages-1.img").is_none(), "raw pages files are not decoded");
}

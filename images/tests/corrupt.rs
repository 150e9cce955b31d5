//! Corrupt and truncated images: every case is an error naming the file and the byte offset,
//! never a panic or an allocation sized by the corrupt length.

mod fixtures;

use fixtures::tempdir;
use rcr_images::{decode_file, encode, pb, ImageError, ImageErrorKind, ImgReader, Kind};

const COMMON: [u8; 4] = 0x5456_4319u32.to_le_bytes();
const CORE: [u8; 4] = 0x5505_3847u32.to_le_bytes();
const MM: [u8; 4] = 0x5749_2820u32.to_le_bytes();
const PIPES_DATA: [u8; 4] = 0x5645_3709u32.to_le_bytes();

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A valid core entry's bytes.
fn core_entry() -> Vec<u8> {
    prost::Message::encode_to_vec(&pb::CoreEntry { mtype: 1, ..Default::default() })
}

fn len(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Kind to open with (None: detect).
    kind: Option<Kind>,
    offset: u64,
    matches: fn(&ImageErrorKind) -> bool,
}

fn cases() -> Vec<Case> {
    let entry = core_entry();
    let elen = entry.len() as u32;
    vec![
        Case {
            name: "empty",
            bytes: vec![],
            kind: None,
            offset: 0,
            matches: |k| matches!(k, ImageErrorKind::Truncated { .. }),
        },
        Case {
            name: "short-magic",
            bytes: vec![0x19, 0x43],
            kind: None,
            offset: 0,
            matches: |k| matches!(k, ImageErrorKind::Truncated { needed: 4, available: 2, .. }),
        },
        Case {
            name: "head-only",
            bytes: COMMON.to_vec(),
            kind: None,
            offset: 4,
            matches: |k| matches!(k, ImageErrorKind::Truncated { .. }),
        },
        Case {
            name: "wrong-magic",
            bytes: cat(&[&COMMON, &MM]),
            kind: Some(Kind::Core),
            offset: 4,
            matches: |k| matches!(k, ImageErrorKind::WrongMagic { expected: "CORE", .. }),
        },
        Case {
            name: "unknown-magic",
            bytes: cat(&[&COMMON, &0xdead_beefu32.to_le_bytes()]),
            kind: None,
            offset: 4,
            matches: |k| matches!(k, ImageErrorKind::UnknownMagic(0xdead_beef)),
        },
        Case {
            name: "raw-data",
            bytes: b"\x7fELF\x02\x01\x01\x00".to_vec(),
            kind: None,
            offset: 0,
            matches: |k| matches!(k, ImageErrorKind::UnknownMagic(_)),
        },
        Case {
            name: "truncated-length",
            bytes: cat(&[&COMMON, &CORE, &entry_prefix(&entry), &[5, 0]]),
            kind: Some(Kind::Core),
            offset: 8 + 4 + u64::from(elen),
            matches: |k| matches!(k, ImageErrorKind::Truncated { needed: 4, available: 2, .. }),
        },
        Case {
            name: "truncated-message",
            bytes: cat(&[&COMMON, &CORE, &len(elen), &entry[..entry.len() - 1]]),
            kind: Some(Kind::Core),
            offset: 8,
            matches: |k| matches!(k, ImageErrorKind::TooLarge { limit_what: "the rest of the file", .. }),
        },
        Case {
            name: "length-larger-than-file",
            bytes: cat(&[&COMMON, &CORE, &len(1 << 20), &entry]),
            kind: None,
            offset: 8,
            matches: |k| matches!(k, ImageErrorKind::TooLarge { len: 0x10_0000, .. }),
        },
        Case {
            name: "huge-length",
            bytes: cat(&[&COMMON, &CORE, &len(u32::MAX), &entry]),
            kind: None,
            offset: 8,
            matches: |k| matches!(k, ImageErrorKind::TooLarge { limit_what: "the entry size limit", .. }),
        },
        Case {
            name: "garbage-protobuf",
            bytes: cat(&[&COMMON, &CORE, &len(4), &[0xff, 0xff, 0xff, 0xff]]),
            kind: None,
            offset: 8,
            matches: |k| matches!(k, ImageErrorKind::Decode { .. }),
        },
        Case {
            name: "garbage-after-entry",
            bytes: cat(&[&COMMON, &CORE, &entry_prefix(&entry), &[0x01, 0x02, 0x03, 0x04, 0x05]]),
            kind: None,
            offset: 8 + 4 + u64::from(elen),
            matches: |k| matches!(k, ImageErrorKind::TooLarge { .. }),
        },
        Case {
            name: "truncated-payload",
            bytes: {
                let e = prost::Message::encode_to_vec(&pb::PipeDataEntry { pipe_id: 1, bytes: 100, size: None });
                cat(&[&COMMON, &PIPES_DATA, &len(e.len() as u32), &e, b"only ten b"])
            },
            kind: None,
            offset: 0, // checked below: the payload's start
            matches: |k| matches!(k, ImageErrorKind::Truncated { needed: 100, available: 10, .. }),
        },
    ]
}

fn entry_prefix(entry: &[u8]) -> Vec<u8> {
    cat(&[&len(entry.len() as u32), entry])
}

/// Reads the whole image the typed way: open, then entries until EOF.
fn read_typed(path: &std::path::Path, kind: Option<Kind>) -> Result<(), ImageError> {
    let mut r = match kind {
        Some(k) => ImgReader::open(path, k)?,
        None => ImgReader::open_any(path)?,
    };
    match r.kind() {
        Kind::PipesData => {
            while let Some(e) = r.read_entry::<pb::PipeDataEntry>()? {
                r.read_raw(e.bytes.into())?;
            }
        }
        _ => {
            while r.read_entry::<pb::CoreEntry>()?.is_some() {}
        }
    }
    Ok(())
}

#[test]
fn corrupt_images_give_located_errors() {
    let dir = tempdir();
    for case in cases() {
        let path = dir.path().join(format!("{}.img", case.name));
        std::fs::write(&path, &case.bytes).unwrap();
        let expected_offset = if case.name == "truncated-payload" { case.bytes.len() as u64 - 10 } else { case.offset };

        if case.name == "wrong-magic" {
            // a valid MM image: only wrong for a reader that asked for CORE
            assert_eq!(decode_file(&path, false).unwrap()["magic"], "MM");
            let err = read_typed(&path, case.kind).expect_err(case.name);
            assert_eq!(err.offset, 4);
            assert!((case.matches)(&err.kind), "{err}");
            assert!(err.to_string().contains("expected CORE"), "{err}");
            continue;
        }
        let err = decode_file(&path, false).expect_err(case.name);
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{}: no file name in {text}", case.name);
        assert!(text.contains(&format!("at byte {expected_offset}")), "{}: wrong offset in {text}", case.name);
        assert_eq!(err.path, path, "{}", case.name);
        assert_eq!(err.offset, expected_offset, "{}: {text}", case.name);
        assert!((case.matches)(&err.kind), "{}: unexpected error {text}", case.name);

        let err = read_typed(&path, case.kind).expect_err(case.name);
        assert_eq!(err.offset, expected_offset, "{} (typed): {err}", case.name);
        assert!((case.matches)(&err.kind), "{} (typed): unexpected error {err}", case.name);
    }
}

#[test]
fn read_raw_is_bounded_by_the_file() {
    let dir = tempdir();
    let path = dir.path().join("pages-1.img");
    std::fs::write(&path, [7u8; 100]).unwrap();
    let mut r = ImgReader::open(&path, Kind::Pages).unwrap();
    let err = r.read_raw(u64::MAX).unwrap_err();
    assert!(matches!(err.kind, ImageErrorKind::TooLarge { .. }), "{err}");
    let err = r.read_raw(101).unwrap_err();
    assert!(matches!(err.kind, ImageErrorKind::Truncated { needed: 101, available: 100, .. }), "{err}");
    assert_eq!(r.read_raw(60).unwrap(), vec![7u8; 60]);
    let err = r.skip_raw(41).unwrap_err();
    assert_eq!(err.offset, 60);
    assert_eq!(r.read_raw_to_end().unwrap().len(), 40);
    assert_eq!(r.remaining(), 0);

    // Decoding it says what the file is, not that its first bytes are an unknown magic.
    let err = decode_file(&path, false).unwrap_err();
    assert!(err.to_string().contains("raw page contents"), "{err}");
}

#[test]
fn bad_json_gives_located_errors() {
    let bad = [
        (serde_json::json!({"entries": []}), "magic"),
        (serde_json::json!({"magic": "NOPE", "entries": []}), "NOPE"),
        (serde_json::json!({"magic": "PAGES", "entries": []}), "PAGES"),
        (serde_json::json!({"magic": "CORE"}), "entries"),
        (serde_json::json!({"magic": "CORE", "entries": [{}]}), "mtype"),
        (serde_json::json!({"magic": "CORE", "entries": [{"mtype": "SPARC"}]}), "entries[0].mtype"),
        (serde_json::json!({"magic": "PSTREE", "entries": [{"pid": -1, "ppid": 0, "pgid": 0, "sid": 0}]}), "entries[0].pid"),
        (serde_json::json!({"magic": "PSTREE", "entries": [{"pid": "0xzz", "ppid": 0, "pgid": 0, "sid": 0}]}), "entries[0].pid"),
        (serde_json::json!({"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 0, "sid": 0, "threads": 5}]}), "threads"),
        (serde_json::json!({"magic": "SECCOMP", "entries": [{"seccomp_filters": [{"filter": "a"}]}]}), "filter"),
        (serde_json::json!({"magic": "INVENTORY", "entries": [5]}), "entries[0]"),
    ];
    for (j, needle) in bad {
        let err = encode(&j).expect_err(needle);
        let text = err.to_string();
        assert!(text.contains("<json>") && text.contains("at byte"), "{text}");
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // Like crit (whose protobuf does not check required fields on parsing), decoding an
    // entry without its required fields works, but encoding it back does not.
    let img = cat(&[&COMMON, &CORE, &len(0)]);
    let j = rcr_images::decode_bytes(&img, "core.img", false).unwrap();
    assert_eq!(j, serde_json::json!({"magic": "CORE", "entries": [{}]}));
    assert!(encode(&j).unwrap_err().to_string().contains("missing required field mtype"));

    // Unknown keys are ignored, as crit does.
    let ok = serde_json::json!({"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 0, "sid": 0, "new_field": 3}]});
    assert!(encode(&ok).is_ok());
}

/// Fields of a newer CRIU (unknown numbers) are skipped, not errors.
#[test]
fn unknown_fields_are_skipped() {
    // pstree_entry {pid: 1, ppid: 0, pgid: 0, sid: 0} plus field 99 (varint 5) and 100 (bytes)
    let mut e = prost::Message::encode_to_vec(&pb::PstreeEntry { pid: 1, ppid: 0, pgid: 0, sid: 0, threads: vec![] });
    e.extend_from_slice(&[0x98, 0x06, 5, 0xa2, 0x06, 2, b'h', b'i']);
    let img = cat(&[&COMMON, &0x5027_3030u32.to_le_bytes(), &len(e.len() as u32), &e]);
    let j = rcr_images::decode_bytes(&img, "pstree.img", false).unwrap();
    assert_eq!(j, serde_json::json!({"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 0, "sid": 0}]}));
    let mut r = ImgReader::from_bytes(&img, "pstree.img", Some(Kind::Pstree)).unwrap();
    assert_eq!(r.read_entry::<pb::PstreeEntry>().unwrap().unwrap().pid, 1);
}

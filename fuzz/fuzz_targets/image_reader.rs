//! Feeds arbitrary bytes to the image reader, the pagemap codec, the file-name parser and the
//! JSON decoder: they must return errors, never panic, hang or allocate by a corrupt length.
//! Whatever decodes must encode back to an image that decodes to the same JSON. Builds only
//! the rcr-images crate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcr_images::pagemap::Pagemap;
use rcr_images::{decode_bytes, encode, ImageName, ImgReader, Kind};

fuzz_target!(|data: &[u8]| {
    let pretty = data.last().is_some_and(|b| b & 1 == 1);
    if let Ok(json) = decode_bytes(data, "fuzz.img", pretty) {
        if let Ok(bytes) = encode(&json) {
            let again = decode_bytes(&bytes, "fuzz-reencoded.img", pretty).expect("re-encoded image decodes");
            assert_eq!(again, json, "decode(encode(json)) != json");
        }
    }

    // The framing alone, with the kind detected and with a forced one.
    for kind in [None, Some(Kind::Pagemap), Some(Kind::Pages)] {
        if let Ok(mut r) = ImgReader::from_bytes(data, "fuzz.img", kind) {
            while let Ok(Some(_)) = r.read_entry_bytes() {}
            let _ = r.read_raw(r.remaining());
        }
    }
    if let Ok(r) = ImgReader::from_bytes(data, "fuzz.img", Some(Kind::Pagemap)) {
        if let Ok(pm) = Pagemap::read_from(r) {
            assert!(pm.runs.windows(2).all(|w| w[0].file_off + w[0].len == w[1].file_off), "runs follow each other in the pages file");
        }
    }
    if let Some(name) = std::str::from_utf8(data).ok().and_then(ImageName::parse) {
        assert_eq!(ImageName::parse(&name.file_name()), Some(name), "a parsed name prints back as itself");
    }
});

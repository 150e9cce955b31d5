//! Feeds arbitrary bytes to the image reader and the JSON decoder: they must return errors,
//! never panic, hang or allocate by a corrupt length. Whatever decodes must encode back to
//! an image that decodes to the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcr_engine::image::{decode_bytes, encode, ImgReader, Kind};

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
});

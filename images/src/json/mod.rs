//! Images as JSON, in exactly the shape `crit decode` prints (`{"magic": "CORE", "entries":
//! [...]}`; with `pretty`, as `crit decode --pretty`), and back (`crit encode`).
//!
//! Raw payloads go in an entry's "extra" key as crit does: base64 text for pipes-data,
//! fifo-data, sk-queues, ghost-file and bpfmap-data, `{"inq", "outq"}` for tcp-stream, a list
//! of numbers for ipcns-sem and alternating message/base64 items for ipcns-msg.

mod convert;
pub mod pyfmt;

use std::io::Read;
use std::path::{Path, PathBuf};

use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::{json, Map, Value as Json};

use super::error::{ImageError, ImageErrorKind, Result};
use super::io::{ImgReader, ImgWriter};
use super::kind::{ImageName, Kind, Layout};

const JSON_LABEL: &str = "<json>";

/// Decodes one image file to crit's JSON.
pub fn decode_file(path: &Path, pretty: bool) -> Result<Json> {
    let name = path.file_name().and_then(|n| n.to_str()).and_then(ImageName::parse);
    if let Some(name) = name.filter(|n| n.kind().is_raw()) {
        let msg = format!("{name} holds raw page contents, no entries: there is nothing to decode (its pagemap image lists them)");
        return Err(ImageError::new(path, 0, ImageErrorKind::Other(msg)));
    }
    decode_reader(ImgReader::open_any(path)?, pretty)
}

/// Decodes an image held in memory; `label` names it in errors.
pub fn decode_bytes(bytes: &[u8], label: &str, pretty: bool) -> Result<Json> {
    decode_reader(ImgReader::from_bytes(bytes, label, None)?, pretty)
}

/// Decodes every image in `dir` to an object: file name -> image. Files named neither `*.img` nor
/// as an image kind (CRIU's `stats-dump` has no `.img`), and raw page files (`pages-<id>.img`, which
/// have no magic) are left out.
pub fn decode_dir(dir: &Path, pretty: bool) -> Result<Json> {
    let entries = std::fs::read_dir(dir).map_err(|e| ImageError::io(dir, 0, "listing the image directory", e))?;
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|e| ImageError::io(dir, 0, "listing the image directory", e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let is_file = e.file_type().map(|t| t.is_file()).unwrap_or(false);
        let known = ImageName::parse(&name);
        let raw = known.is_some_and(|n| n.kind().is_raw());
        if is_file && (name.ends_with(".img") || known.is_some()) && !raw {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Map::new();
    for name in names {
        let img = decode_file(&dir.join(&name), pretty)?;
        out.insert(name, img);
    }
    Ok(Json::Object(out))
}

/// Encodes crit's JSON (pretty or not) back to image bytes, as `crit encode` does.
pub fn encode(value: &Json) -> Result<Vec<u8>> {
    let label = PathBuf::from(JSON_LABEL);
    let magic = value
        .get("magic")
        .and_then(Json::as_str)
        .ok_or_else(|| ImageError::json(&label, 0, "magic", "missing or not a string"))?;
    let kind = Kind::from_crit_name(magic)
        .filter(|k| !k.is_raw())
        .ok_or_else(|| ImageError::new(&label, 0, ImageErrorKind::UnknownKind(magic.to_string())))?;
    let entries = value
        .get("entries")
        .and_then(Json::as_array)
        .ok_or_else(|| ImageError::json(&label, 0, "entries", "missing or not a list"))?;
    let mut enc = Encoder {
        w: ImgWriter::new(Vec::new(), &label, kind)?,
        label,
    };
    enc.entries(kind, entries)?;
    enc.w.into_inner()
}

fn descriptor(name: &str, path: &Path, offset: u64) -> Result<MessageDescriptor> {
    let pool = super::pb::descriptor_pool().map_err(|e| ImageError::new(path, offset, ImageErrorKind::Other(e)))?;
    pool.get_message_by_name(name).ok_or_else(|| {
        ImageError::new(path, offset, ImageErrorKind::Other(format!("no protobuf message {name} is compiled in")))
    })
}

struct Decoder<R: Read> {
    r: ImgReader<R>,
    pretty: bool,
}

fn decode_reader<R: Read>(r: ImgReader<R>, pretty: bool) -> Result<Json> {
    let kind = r.kind();
    let mut d = Decoder { r, pretty };
    let entries = d.entries(kind)?;
    Ok(json!({ "magic": kind.crit_name(), "entries": entries }))
}

impl<R: Read> Decoder<R> {
    /// The next entry as a dynamic message, or None at EOF.
    fn next(&mut self, message: &str) -> Result<Option<DynamicMessage>> {
        let start = self.r.offset();
        let desc = descriptor(message, self.r.path(), start)?;
        let Some(bytes) = self.r.read_entry_bytes()? else {
            return Ok(None);
        };
        DynamicMessage::decode(desc, bytes.as_slice()).map(Some).map_err(|source| {
            ImageError::new(
                self.r.path(),
                start,
                ImageErrorKind::Decode { message: message.to_string(), len: bytes.len() as u64, source },
            )
        })
    }

    /// The next entry, which must be there.
    fn expect(&mut self, message: &str) -> Result<DynamicMessage> {
        let at = self.r.offset();
        self.next(message)?.ok_or_else(|| {
            ImageError::new(self.r.path(), at, ImageErrorKind::Truncated { what: "a required entry", needed: 4, available: 0 })
        })
    }

    fn to_json(&self, m: &DynamicMessage) -> Json {
        convert::msg_to_json(m, self.pretty, false)
    }

    fn raw_b64(&mut self, len: u64) -> Result<Json> {
        Ok(Json::String(pyfmt::b64_encode(&self.r.read_raw(len)?)))
    }

    fn entries(&mut self, kind: Kind) -> Result<Vec<Json>> {
        let mut out = Vec::new();
        let msg = kind.message_name();
        match kind.layout() {
            Layout::Raw => {
                return Err(ImageError::new(self.r.path(), 0, ImageErrorKind::Other("raw images have no entries".into())))
            }
            Layout::Plain => {
                while let Some(m) = self.next(msg)? {
                    out.push(self.to_json(&m));
                }
            }
            Layout::Pagemap => {
                let mut name = "pagemap_head";
                while let Some(m) = self.next(name)? {
                    out.push(self.to_json(&m));
                    name = msg;
                }
            }
            Layout::GhostFile => {
                let head = self.expect(msg)?;
                let mut j = self.to_json(&head);
                if field_u64(&head, "chunks") != 0 {
                    out.push(j);
                    while let Some(c) = self.next("ghost_chunk_entry")? {
                        let mut cj = self.to_json(&c);
                        let extra = self.raw_b64(field_u64(&c, "len"))?;
                        put_extra(&mut cj, extra);
                        out.push(cj);
                    }
                } else {
                    let rest = self.r.remaining();
                    put_extra(&mut j, self.raw_b64(rest)?);
                    out.push(j);
                }
            }
            layout => {
                while let Some(m) = self.next(msg)? {
                    let mut j = self.to_json(&m);
                    let extra = self.extra(layout, &m)?;
                    put_extra(&mut j, extra);
                    out.push(j);
                }
            }
        }
        Ok(out)
    }

    /// The raw payload after an entry, as crit shows it.
    fn extra(&mut self, layout: Layout, m: &DynamicMessage) -> Result<Json> {
        Ok(match layout {
            Layout::PayloadField(field) => self.raw_b64(field_u64(m, field))?,
            Layout::BpfmapData => {
                let len = field_u64(m, "keys_bytes").saturating_add(field_u64(m, "values_bytes"));
                self.raw_b64(len)?
            }
            Layout::TcpStream => {
                let inq = self.raw_b64(field_u64(m, "inq_len"))?;
                let outq = self.raw_b64(field_u64(m, "outq_len"))?;
                json!({ "inq": inq, "outq": outq })
            }
            Layout::IpcShm => {
                let size = field_u64(m, "size");
                let data = self.raw_b64(size)?;
                self.r.skip_raw(round_up(size, 4) - size)?;
                data
            }
            Layout::IpcSem => {
                let size = field_u64(m, "nsems").saturating_mul(2);
                let raw = self.r.read_raw(size)?;
                self.r.skip_raw(round_up(size, 8) - size)?;
                Json::Array(raw.chunks(2).map(|c| json!(u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).collect())
            }
            Layout::IpcMsg => {
                let mut items = Vec::new();
                for _ in 0..field_u64(m, "qnum") {
                    let Some(msg) = self.next("ipc_msg")? else { break };
                    let size = field_u64(&msg, "msize");
                    // crit decodes these without pretty-printing
                    items.push(convert::msg_to_json(&msg, false, false));
                    items.push(self.raw_b64(size)?);
                    self.r.skip_raw(round_up(size, 8) - size)?;
                }
                Json::Array(items)
            }
            Layout::Plain | Layout::Raw | Layout::Pagemap | Layout::GhostFile => Json::Null,
        })
    }
}

fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to).saturating_mul(to).max(x)
}

fn put_extra(entry: &mut Json, extra: Json) {
    if let Json::Object(m) = entry {
        m.insert("extra".to_string(), extra);
    }
}

/// An integer (or bool) field's value, its default when unset.
fn field_u64(m: &DynamicMessage, name: &str) -> u64 {
    match m.get_field_by_name(name).as_deref() {
        Some(prost_reflect::Value::U32(v)) => (*v).into(),
        Some(prost_reflect::Value::U64(v)) => *v,
        Some(prost_reflect::Value::I32(v)) => u64::try_from(*v).unwrap_or(0),
        Some(prost_reflect::Value::I64(v)) => u64::try_from(*v).unwrap_or(0),
        Some(prost_reflect::Value::Bool(b)) => u64::from(*b),
        _ => 0,
    }
}

struct Encoder {
    w: ImgWriter<Vec<u8>>,
    label: PathBuf,
}

impl Encoder {
    fn err(&self, at: &str, msg: impl Into<String>) -> ImageError {
        ImageError::json(&self.label, self.w.offset(), at, msg)
    }

    fn message(&mut self, name: &str, j: &Json, at: &str) -> Result<DynamicMessage> {
        let desc = descriptor(name, &self.label, self.w.offset())?;
        let m = convert::json_to_msg(&desc, j, at).map_err(|e| self.err(at, e))?;
        self.w.write_entry_bytes(&prost::Message::encode_to_vec(&m))?;
        Ok(m)
    }

    fn b64(&mut self, j: Option<&Json>, at: &str) -> Result<()> {
        match j {
            None | Some(Json::Null) => Ok(()),
            Some(Json::String(s)) => {
                let data = pyfmt::b64_decode(s).map_err(|e| self.err(at, e))?;
                self.w.write_raw(&data)
            }
            Some(other) => Err(self.err(at, format!("expected base64 text, got {other}"))),
        }
    }

    fn entries(&mut self, kind: Kind, entries: &[Json]) -> Result<()> {
        let msg = kind.message_name();
        for (i, e) in entries.iter().enumerate() {
            let at = format!("entries[{i}]");
            let extra = e.get("extra");
            let extra_at = format!("{at}.extra");
            match kind.layout() {
                Layout::Raw => return Err(self.err(&at, "raw images have no entries")),
                Layout::Plain => {
                    self.message(msg, e, &at)?;
                }
                Layout::Pagemap => {
                    self.message(if i == 0 { "pagemap_head" } else { msg }, e, &at)?;
                }
                Layout::GhostFile => {
                    let chunks = entries.first().and_then(|h| h.get("chunks")).is_some_and(json_truthy);
                    self.message(if i == 0 { msg } else { "ghost_chunk_entry" }, e, &at)?;
                    if i > 0 || !chunks {
                        self.b64(extra, &extra_at)?;
                    }
                }
                Layout::PayloadField(_) | Layout::BpfmapData => {
                    self.message(msg, e, &at)?;
                    self.b64(extra, &extra_at)?;
                }
                Layout::TcpStream => {
                    self.message(msg, e, &at)?;
                    if let Some(x) = extra {
                        self.b64(x.get("inq"), &format!("{extra_at}.inq"))?;
                        self.b64(x.get("outq"), &format!("{extra_at}.outq"))?;
                    }
                }
                Layout::IpcShm => {
                    let m = self.message(msg, e, &at)?;
                    let size = field_u64(&m, "size");
                    self.padded_b64(extra, size, 4, &extra_at)?;
                }
                Layout::IpcSem => {
                    let m = self.message(msg, e, &at)?;
                    let nsems = field_u64(&m, "nsems");
                    let vals = extra.and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
                    if vals.len() as u64 != nsems {
                        return Err(self.err(&extra_at, format!("{} semaphore values for nsems {nsems}", vals.len())));
                    }
                    let mut raw = Vec::new();
                    for v in vals {
                        let v = v.as_u64().and_then(|v| u16::try_from(v).ok()).ok_or_else(|| self.err(&extra_at, "expected u16 values"))?;
                        raw.extend_from_slice(&v.to_le_bytes());
                    }
                    let pad = round_up(raw.len() as u64, 8) as usize - raw.len();
                    raw.resize(raw.len() + pad, 0);
                    self.w.write_raw(&raw)?;
                }
                Layout::IpcMsg => {
                    self.message(msg, e, &at)?;
                    let items = extra.and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
                    for (k, pair) in items.chunks(2).enumerate() {
                        let item_at = format!("{extra_at}[{}]", 2 * k);
                        let m = self.message("ipc_msg", &pair[0], &item_at)?;
                        let size = field_u64(&m, "msize");
                        self.padded_b64(pair.get(1), size, 8, &format!("{extra_at}[{}]", 2 * k + 1))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `size` bytes of base64 data (cut or zero-filled), zero-padded to `align`.
    fn padded_b64(&mut self, j: Option<&Json>, size: u64, align: u64, at: &str) -> Result<()> {
        let text = j.and_then(Json::as_str).unwrap_or("");
        let mut data = pyfmt::b64_decode(text).map_err(|e| self.err(at, e))?;
        let size = usize::try_from(size).map_err(|_| self.err(at, "size too large"))?;
        if data.len() < size {
            return Err(self.err(at, format!("{} bytes of data for size {size}", data.len())));
        }
        data.truncate(size);
        let padded = round_up(size as u64, align) as usize;
        data.resize(padded, 0);
        self.w.write_raw(&data)
    }
}

fn json_truthy(j: &Json) -> bool {
    match j {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Json::String(s) => !s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pagemap-1.img: head {pages_id: 1}, entry {vaddr: 0x1000, compat_nr_pages: 2, flags:
    /// PE_PRESENT} as CRIU 3.x writes it, then the same with nr_pages (field 5) as CRIU 4.x does.
    const PAGEMAP: &[u8] = &[
        0x19, 0x43, 0x56, 0x54, 0x25, 0x40, 0x08, 0x56, // magics
        2, 0, 0, 0, 0x08, 0x01, // head
        7, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x02, 0x20, 0x04, // entry, CRIU 3.x
        9, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x02, 0x20, 0x04, 0x28, 0x02, // entry, CRIU 4.x
    ];

    /// Field names and order are CRIU 4.2's (crit 4.2 prints the same keys).
    #[test]
    fn pagemap_literal() {
        let plain = decode_bytes(PAGEMAP, "pagemap-1.img", false).unwrap();
        assert_eq!(
            plain,
            json!({"magic": "PAGEMAP", "entries": [
                {"pages_id": 1},
                {"vaddr": 4096, "compat_nr_pages": 2, "flags": 4},
                {"vaddr": 4096, "compat_nr_pages": 2, "flags": 4, "nr_pages": 2},
            ]})
        );
        let pretty = decode_bytes(PAGEMAP, "pagemap-1.img", true).unwrap();
        let keys: Vec<&String> = pretty["entries"][2].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["vaddr", "compat_nr_pages", "flags", "nr_pages"]);
        assert_eq!(pretty["entries"][2], json!({"vaddr": "0x1000", "compat_nr_pages": 2, "flags": "PE_PRESENT", "nr_pages": 2}));
        assert_eq!(encode(&plain).unwrap(), PAGEMAP);
        assert_eq!(encode(&pretty).unwrap(), PAGEMAP);
    }

    #[test]
    fn pipes_data_payload_in_extra() {
        // pipe_data_entry {pipe_id: 1, bytes: 2} + "ab"
        let img = [0x19, 0x43, 0x56, 0x54, 0x09, 0x37, 0x45, 0x56, 4, 0, 0, 0, 0x08, 1, 0x10, 2, b'a', b'b'];
        let j = decode_bytes(&img, "pipes-data.img", false).unwrap();
        assert_eq!(j, json!({"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 2, "extra": "YWI=\n"}]}));
        assert_eq!(encode(&j).unwrap(), img);
    }

    #[test]
    fn round_up_is_safe() {
        assert_eq!(round_up(5, 4), 8);
        assert_eq!(round_up(8, 8), 8);
        assert_eq!(round_up(0, 8), 0);
        assert_eq!(round_up(u64::MAX, 8), u64::MAX);
    }
}

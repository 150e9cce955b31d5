//! CRIU 4.2's RPC messages (`criu swrk` / `criu service`), generated from `proto/rpc.proto`, and a
//! strict decoder: prost skips fields it does not know, but a request with a field rcr does not know
//! is one whose meaning rcr would silently drop, so [`decode_request`] refuses it by number.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/rpc/_.rs"));

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};
use std::sync::OnceLock;

/// The encoded FileDescriptorSet of rpc.proto.
const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rpc_descriptors.bin"));

fn pool() -> Result<&'static DescriptorPool, String> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).map_err(|e| format!("the built-in RPC descriptors do not load: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// Why a request packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request is not a criu_req message ({0})")]
    Undecodable(String),
    #[error("the request has fields rcr does not know: {}", .0.join(", "))]
    UnknownFields(Vec<String>),
}

/// Decodes one request packet; fails on bytes that are not a `criu_req` and on fields (at any depth)
/// that rpc.proto does not have, naming them as `message.number`.
pub fn decode_request(bytes: &[u8]) -> Result<CriuReq, RequestError> {
    let req = CriuReq::decode(bytes).map_err(|e| RequestError::Undecodable(e.to_string()))?;
    let pool = pool().map_err(RequestError::Undecodable)?;
    let desc = pool.get_message_by_name("criu_req").ok_or_else(|| RequestError::Undecodable("criu_req is not in the descriptors".into()))?;
    let dynamic = DynamicMessage::decode(desc, bytes).map_err(|e| RequestError::Undecodable(e.to_string()))?;
    let mut unknown = Vec::new();
    collect_unknown(&dynamic, &mut unknown);
    if !unknown.is_empty() {
        return Err(RequestError::UnknownFields(unknown));
    }
    Ok(req)
}

/// The field names of message `name` of rpc.proto (for tests that every field is handled).
pub fn message_fields(name: &str) -> Vec<String> {
    pool().ok().and_then(|p| p.get_message_by_name(name)).map(|m| m.fields().map(|f| f.name().to_string()).collect()).unwrap_or_default()
}

fn collect_unknown(m: &DynamicMessage, out: &mut Vec<String>) {
    let name = m.descriptor().name().to_string();
    out.extend(m.unknown_fields().map(|f| format!("{name}.{}", f.number())));
    for (_, v) in m.fields() {
        match v {
            Value::Message(inner) => collect_unknown(inner, out),
            Value::List(items) => {
                for i in items {
                    if let Value::Message(inner) = i {
                        collect_unknown(inner, out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        let req = CriuReq { r#type: CriuReqType::Version as i32, ..Default::default() };
        let bytes = req.encode_to_vec();
        assert_eq!(decode_request(&bytes).unwrap(), req);
        // Field 100 of criu_opts (varint 1), inside field 2 of criu_req.
        let mut opts = CriuOpts::default().encode_to_vec();
        opts.extend([0xa0, 0x06, 0x01]);
        let mut bad = bytes.clone();
        bad.push(0x12);
        bad.push(opts.len() as u8);
        bad.extend(opts);
        assert_eq!(decode_request(&bad), Err(RequestError::UnknownFields(vec!["criu_opts.100".into()])));
        assert!(matches!(decode_request(&[0x08, 0x80]), Err(RequestError::Undecodable(_))));
        assert!(matches!(decode_request(&[0xff; 7]), Err(RequestError::Undecodable(_))));
    }
}

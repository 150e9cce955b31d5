//! Protobuf message <-> crit-style JSON, following crit's pb2dict.py: fields in number order
//! under their proto names, enums by name, bytes as base64 (or quoted-printable for
//! `(criu).conv = "unix_name"`), and with `pretty` the `(criu)` options: hex numbers, flag
//! names, "major:minor" devices, dict names and IP addresses. Unknown fields are skipped.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost_reflect::{Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use serde_json::{Map, Value as Json};

use super::pyfmt;

/// A field's `(criu)` options (CRIU's opts.proto).
#[derive(Debug, Default, Clone)]
pub(crate) struct CriuOpts {
    pub hex: bool,
    pub ipadd: bool,
    pub flags: Option<String>,
    pub dev: bool,
    pub odev: bool,
    pub dict: Option<String>,
    pub conv: Option<String>,
}

/// Options of every field of every message, by the field's full name.
fn opts_table(pool: &DescriptorPool) -> HashMap<String, CriuOpts> {
    let mut table = HashMap::new();
    let Some(ext) = pool.get_extension_by_name("criu") else {
        return table;
    };
    for msg in pool.all_messages() {
        for f in msg.fields() {
            let options = f.options();
            if !options.has_extension(&ext) {
                continue;
            }
            let o = options.get_extension(&ext);
            let Some(o) = o.as_message() else { continue };
            let b = |n: &str| o.get_field_by_name(n).and_then(|v| v.as_bool()).unwrap_or(false);
            let s = |n: &str| {
                o.has_field_by_name(n)
                    .then(|| o.get_field_by_name(n).and_then(|v| v.as_str().map(str::to_string)))
                    .flatten()
                    .filter(|s| !s.is_empty())
            };
            table.insert(
                f.full_name().to_string(),
                CriuOpts {
                    hex: b("hex"),
                    ipadd: b("ipadd"),
                    flags: s("flags"),
                    dev: b("dev"),
                    odev: b("odev"),
                    dict: s("dict"),
                    conv: s("conv"),
                },
            );
        }
    }
    table
}

fn opts(f: &FieldDescriptor) -> &'static CriuOpts {
    static TABLE: OnceLock<HashMap<String, CriuOpts>> = OnceLock::new();
    static NONE: CriuOpts = CriuOpts {
        hex: false,
        ipadd: false,
        flags: None,
        dev: false,
        odev: false,
        dict: None,
        conv: None,
    };
    let table = TABLE.get_or_init(|| super::super::pb::descriptor_pool().map(opts_table).unwrap_or_default());
    table.get(f.full_name()).unwrap_or(&NONE)
}

/// pb2dict: a message as a JSON object.
pub(crate) fn msg_to_json(msg: &DynamicMessage, pretty: bool, is_hex: bool) -> Json {
    let mut fields: Vec<(FieldDescriptor, &Value)> = msg.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    let mut out = Map::new();
    for (f, v) in fields {
        let o = opts(&f);
        let j = match v {
            Value::List(items) => {
                let words: Option<Vec<u32>> = items.iter().map(Value::as_u32).collect();
                match (pretty && o.ipadd, words.as_deref().and_then(pyfmt::ip_to_string)) {
                    (true, Some(ip)) => Json::Array(vec![Json::String(ip)]),
                    _ => Json::Array(items.iter().filter_map(|x| cast_to_json(&f, o, x, pretty, is_hex)).collect()),
                }
            }
            other => match cast_to_json(&f, o, other, pretty, is_hex) {
                Some(j) => j,
                None => continue,
            },
        };
        out.insert(f.name().to_string(), j);
    }
    Json::Object(out)
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::I32(x) => Some((*x).into()),
        Value::I64(x) => Some((*x).into()),
        Value::U32(x) => Some((*x).into()),
        Value::U64(x) => Some((*x).into()),
        _ => None,
    }
}

fn int_json(v: i128) -> Json {
    if let Ok(u) = u64::try_from(v) {
        Json::from(u)
    } else {
        // every proto integer fits i64 when negative
        Json::from(i64::try_from(v).unwrap_or(i64::MIN))
    }
}

/// pb2dict's _pb2dict_cast; None for a value crit would not list (unknown enum number).
fn cast_to_json(f: &FieldDescriptor, o: &CriuOpts, v: &Value, pretty: bool, is_hex: bool) -> Option<Json> {
    let is_hex = is_hex || o.hex;
    Some(match v {
        Value::Message(m) => msg_to_json(m, pretty, is_hex),
        Value::Bytes(b) => Json::String(match o.conv.as_deref() {
            Some("unix_name") => pyfmt::qp_encode(b),
            _ => pyfmt::b64_encode(b),
        }),
        Value::EnumNumber(n) => match f.kind() {
            Kind::Enum(e) => Json::String(e.get_value(*n)?.name().to_string()),
            _ => return None,
        },
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::F32(x) => Json::from(f64::from(*x)),
        Value::F64(x) => Json::from(*x),
        Value::List(_) | Value::Map(_) => return None,
        int => {
            let n = int_of(int)?;
            if !pretty {
                return Some(int_json(n));
            }
            if is_hex {
                return Some(Json::String(pyfmt::py_hex(n)));
            }
            if o.dev {
                return Some(Json::String(pyfmt::dev_to_string(n as u64, o.odev)));
            }
            if let Some(flags) = &o.flags {
                return Some(Json::String(match pyfmt::flags_map(flags) {
                    Some(map) => pyfmt::map_flags(n as u64, map),
                    None => pyfmt::py_hex(n),
                }));
            }
            if let Some(dict) = &o.dict {
                if let Some(name) = pyfmt::dict_map(dict, f.name()).and_then(|m| m.iter().find(|(k, _)| *k == n)) {
                    return Some(Json::String(name.1.to_string()));
                }
            }
            int_json(n)
        }
    })
}

/// dict2pb: builds a message of type `desc` from a crit JSON object. `at` is the JSON path
/// for error messages. Keys that are not fields are ignored (as crit does); required fields
/// must be present (crit's protobuf refuses to serialize without them).
pub(crate) fn json_to_msg(desc: &MessageDescriptor, j: &Json, at: &str) -> Result<DynamicMessage, String> {
    let obj = j.as_object().ok_or_else(|| format!("{at}: expected an object for {}", desc.name()))?;
    let mut msg = DynamicMessage::new(desc.clone());
    for f in desc.fields() {
        let Some(v) = obj.get(f.name()) else { continue };
        let here = format!("{at}.{}", f.name());
        let o = opts(&f);
        if f.is_list() {
            let arr = v.as_array().ok_or_else(|| format!("{here}: expected a list"))?;
            let ip = match arr.first() {
                Some(Json::String(s)) if o.ipadd => Some(
                    pyfmt::ip_from_string(s).ok_or_else(|| format!("{here}: bad IP address {s:?}"))?,
                ),
                _ => None,
            };
            let items = match ip {
                Some(words) => words.into_iter().map(Value::U32).collect(),
                None => arr
                    .iter()
                    .enumerate()
                    .map(|(i, x)| json_to_value(&f, o, x, &format!("{here}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            msg.set_field(&f, Value::List(items));
        } else {
            let val = json_to_value(&f, o, v, &here)?;
            msg.set_field(&f, val);
        }
    }
    for f in desc.fields() {
        if f.cardinality() == Cardinality::Required && !msg.has_field(&f) {
            return Err(format!("{at}: {} is missing required field {}", desc.name(), f.name()));
        }
    }
    Ok(msg)
}

fn json_to_value(f: &FieldDescriptor, o: &CriuOpts, j: &Json, at: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{at}: {what}, got {j}");
    match f.kind() {
        Kind::Message(m) => Ok(Value::Message(json_to_msg(&m, j, at)?)),
        Kind::Bytes => {
            let s = j.as_str().ok_or_else(|| bad("expected a string"))?;
            let b = match o.conv.as_deref() {
                Some("unix_name") => pyfmt::qp_decode(s),
                _ => pyfmt::b64_decode(s).map_err(|e| format!("{at}: {e}"))?,
            };
            Ok(Value::Bytes(b.into()))
        }
        Kind::Enum(e) => {
            let n = match j {
                Json::String(s) => e.get_value_by_name(s).map(|v| v.number()),
                Json::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()).filter(|n| e.get_value(*n).is_some()),
                _ => None,
            };
            n.map(Value::EnumNumber).ok_or_else(|| bad(&format!("expected a value of enum {}", e.name())))
        }
        Kind::Bool => Ok(Value::Bool(match j {
            Json::Bool(b) => *b,
            Json::Null => false,
            Json::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
            Json::String(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(m) => !m.is_empty(),
        })),
        Kind::String => match j {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => Ok(Value::String(n.to_string())),
            _ => Err(bad("expected a string")),
        },
        Kind::Float | Kind::Double => {
            let x = j.as_f64().ok_or_else(|| bad("expected a number"))?;
            Ok(if f.kind() == Kind::Float { Value::F32(x as f32) } else { Value::F64(x) })
        }
        kind => {
            let n = match j {
                Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
                Json::String(s) => string_to_int(f, o, s),
                _ => None,
            }
            .ok_or_else(|| bad("expected an integer"))?;
            let out_of_range = || bad("integer out of range for the field");
            Ok(match kind {
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(i32::try_from(n).map_err(|_| out_of_range())?),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(i64::try_from(n).map_err(|_| out_of_range())?),
                Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(n).map_err(|_| out_of_range())?),
                _ => Value::U64(u64::try_from(n).map_err(|_| out_of_range())?),
            })
        }
    }
}

/// dict2pb's string-to-int: dev, then flags, then dict names, then `int(s, 0)`. Where crit
/// would raise (e.g. a hex string in a dev field), the later forms are tried instead.
fn string_to_int(f: &FieldDescriptor, o: &CriuOpts, s: &str) -> Option<i128> {
    if o.dev {
        if let Some(v) = pyfmt::dev_from_string(s, o.odev) {
            return Some(v);
        }
    }
    if let Some(map) = o.flags.as_deref().and_then(pyfmt::flags_map) {
        if let Some(v) = pyfmt::unmap_flags(s, map) {
            return Some(v);
        }
    }
    if let Some(dict) = &o.dict {
        if let Some((k, _)) = pyfmt::dict_map(dict, f.name()).and_then(|m| m.iter().find(|(_, name)| *name == s)) {
            return Some(*k);
        }
    }
    pyfmt::py_int(s)
}

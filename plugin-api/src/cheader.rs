//! `include/rcr_plugin.h`, written from the ABI's declarations (the hooks, the services, the structs,
//! the constants): C plugins see exactly the layout this crate has. The header is checked in; the tests
//! check that it is what [`header`] writes (`RCR_BLESS=1 cargo test -p rcr-plugin-api` rewrites it)
//! and, compiled by `cc`, that its sizes and offsets are this crate's.

use std::fmt::Write;

/// A field of an ABI struct, with its offset in the Rust layout.
pub struct CField {
    pub name: &'static str,
    pub ty: CType,
    pub doc: &'static str,
    pub offset: usize,
}

/// The type of a field.
pub enum CType {
    /// A plain type, as Rust writes it (`u32`, `*const u8`, `CText`).
    Plain(&'static str),
    /// A service's function pointer (see [`crate::SERVICES`]).
    Service(&'static str),
    /// A hook's function pointer (see [`crate::HOOKS`]).
    Hook(&'static str),
}

/// An ABI struct: its C name, its size and fields in the Rust layout.
pub struct CStruct {
    pub c: &'static str,
    pub doc: &'static str,
    pub size: usize,
    pub fields: Vec<CField>,
}

impl CStruct {
    /// A struct of a fixed head of plain fields `(name, Rust type, doc, offset)` and then `rest`.
    pub fn with_head(c: &'static str, doc: &'static str, size: usize, head: &[(&'static str, &'static str, &'static str, usize)], rest: Vec<CField>) -> CStruct {
        let mut fields: Vec<CField> = head.iter().map(|&(name, ty, doc, offset)| CField { name, ty: CType::Plain(ty), doc, offset }).collect();
        fields.extend(rest);
        CStruct { c, doc, size, fields }
    }
}

/// A hook or a service: name, the ABI version that added it, its arguments (after the host table or
/// `ctx`), as Rust writes them, and its return type.
pub struct FnDesc {
    pub name: &'static str,
    pub version: u32,
    pub args: &'static [(&'static str, &'static str)],
    pub ret: &'static str,
    pub doc: &'static str,
}

/// The C spelling of a Rust type of the ABI. Panics on a type the ABI does not use: a new one must be
/// added here (the header test then fails until it is).
pub fn c_type(rust: &str) -> String {
    let t: String = rust.split_whitespace().collect::<Vec<_>>().join(" ").replace("* ", "*");
    if let Some(inner) = t.strip_prefix("*const ") {
        return format!("const {} *", c_type(inner));
    }
    if let Some(inner) = t.strip_prefix("*mut ") {
        return format!("{} *", c_type(inner));
    }
    match t.as_str() {
        "u8" => "uint8_t",
        "i32" => "int32_t",
        "u32" => "uint32_t",
        "i64" => "int64_t",
        "u64" => "uint64_t",
        "usize" => "size_t",
        "()" => "void",
        "c_void" => "void",
        "c_char" => "char",
        "CText" => "const char *",
        "HostPtr" => "const struct rcr_host *",
        "RcrFile" => "struct rcr_file",
        "RcrVma" => "struct rcr_vma",
        "RcrMount" => "struct rcr_mount",
        "RcrLink" => "struct rcr_link",
        other => panic!("the C header has no spelling for the Rust type `{other}`: add it to cheader::c_type"),
    }
    .to_string()
}

/// `TYPE NAME`, with the pointer star next to the name.
fn decl(ty: &str, name: &str) -> String {
    if ty.ends_with('*') {
        format!("{ty}{name}")
    } else {
        format!("{ty} {name}")
    }
}

fn fn_decl(f: &FnDesc, first: &str) -> String {
    let mut args = vec![first.to_string()];
    args.extend(f.args.iter().map(|(n, t)| decl(&c_type(t), n)));
    format!("{} (*{})({})", c_type(f.ret), f.name, args.join(", "))
}

/// The doc text as C comment lines at `indent`.
fn comment(out: &mut String, doc: &str, indent: &str) {
    let lines: Vec<&str> = doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.len() {
        0 => {}
        1 => {
            let _ = writeln!(out, "{indent}/* {} */", lines[0]);
        }
        _ => {
            let _ = writeln!(out, "{indent}/* {}", lines[0]);
            for l in &lines[1..lines.len() - 1] {
                let _ = writeln!(out, "{indent} * {l}");
            }
            let _ = writeln!(out, "{indent} * {} */", lines[lines.len() - 1]);
        }
    }
}

/// Every struct of the ABI, in the header's order.
pub fn structs() -> Vec<CStruct> {
    vec![crate::RcrHost::layout(), crate::RcrFile::layout(), crate::RcrVma::layout(), crate::RcrMount::layout(), crate::RcrLink::layout(), crate::RcrPluginC::layout()]
}

fn find(list: &'static [FnDesc], name: &str) -> &'static FnDesc {
    list.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} is not declared"))
}

/// The `#define`s of the header: name and value.
pub fn defines() -> Vec<(&'static str, String)> {
    use crate::*;
    let mut d: Vec<(&'static str, String)> = vec![("RCR_PLUGIN_ABI_VERSION", ABI_VERSION.to_string())];
    for (n, v) in [("RCR_OK", RCR_OK), ("RCR_NOT_MINE", RCR_NOT_MINE), ("RCR_RETRY", RCR_RETRY), ("RCR_ERROR", RCR_ERROR)] {
        d.push((n, if v < 0 { format!("({v})") } else { v.to_string() }));
    }
    for (n, v) in [
        ("RCR_STAGE_DUMP", RCR_STAGE_DUMP),
        ("RCR_STAGE_PRE_DUMP", RCR_STAGE_PRE_DUMP),
        ("RCR_STAGE_RESTORE", RCR_STAGE_RESTORE),
        ("RCR_LOG_ERROR", RCR_LOG_ERROR),
        ("RCR_LOG_WARN", RCR_LOG_WARN),
        ("RCR_LOG_INFO", RCR_LOG_INFO),
        ("RCR_LOG_DEBUG", RCR_LOG_DEBUG),
        ("RCR_IMAGE_READ", RCR_IMAGE_READ),
        ("RCR_IMAGE_WRITE", RCR_IMAGE_WRITE),
    ] {
        d.push((n, v.to_string()));
    }
    d
}

const PREAMBLE: &str = "/* rcr plugin ABI for C and C++ plugins. GENERATED from the declarations of the Rust crate
 * rcr-plugin-api (plugin-api/src/hooks.rs, services.rs, abi.rs) by its cheader module: do not edit,
 * run `RCR_BLESS=1 cargo test -p rcr-plugin-api` after changing them. See plugin-api/README.md for the
 * hooks, their order and the process each runs in.
 *
 * A C plugin is a shared library (cc -shared -fPIC) that exports
 *
 *     const struct rcr_plugin *rcr_plugin_entry(void);
 *
 * returning a static descriptor. Versioned and append-only: fields are only ever added at the end of
 * a struct, and each struct carries its size. Set abi_version to RCR_PLUGIN_ABI_VERSION and size to
 * sizeof(struct rcr_plugin); leave hooks you do not implement NULL. Read a service of struct rcr_host
 * only if its size covers it. */
#ifndef RCR_PLUGIN_H
#define RCR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern \"C\" {
#endif

";

/// The text of `include/rcr_plugin.h`.
pub fn header() -> String {
    let mut out = String::from(PREAMBLE);
    for (n, v) in defines() {
        let _ = writeln!(out, "#define {n} {v}");
    }
    for s in structs() {
        out.push('\n');
        comment(&mut out, s.doc, "");
        let _ = writeln!(out, "struct {} {{", s.c);
        let mut version = 1;
        for f in &s.fields {
            let (line, v) = match &f.ty {
                CType::Plain(t) => (format!("{};", decl(&c_type(t), f.name)), 1),
                CType::Service(n) => {
                    let d = find(crate::SERVICES, n);
                    (format!("{};", fn_decl(d, "void *ctx")), d.version)
                }
                CType::Hook(n) => {
                    let d = find(crate::HOOKS, n);
                    (format!("{};", fn_decl(d, "const struct rcr_host *host")), d.version)
                }
            };
            if v != version {
                version = v;
                let _ = writeln!(out, "\t/* ---- ABI version {v} ---- */");
            }
            comment(&mut out, f.doc, "\t");
            let _ = writeln!(out, "\t{line}");
        }
        let _ = writeln!(out, "}};");
    }
    out.push_str("\n#ifdef __cplusplus\n#define RCR_STATIC_ASSERT static_assert\n#else\n#define RCR_STATIC_ASSERT _Static_assert\n#endif\n");
    for s in structs() {
        let _ = writeln!(out, "RCR_STATIC_ASSERT(sizeof(struct {}) == {}, \"struct {} layout\");", s.c, s.size, s.c);
    }
    out.push_str("/* sizeof(struct rcr_plugin) of each ABI version: a plugin built for version N has this size. */\n");
    for v in 1..=crate::ABI_VERSION {
        let _ = writeln!(out, "#define RCR_PLUGIN_SIZE_V{v} {}", crate::RcrPluginC::size_of_version(v));
    }
    out.push_str("\nconst struct rcr_plugin *rcr_plugin_entry(void);\n\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
    out
}

/// A C program that prints, for every struct, `struct SIZE` and `struct.field OFFSET` lines, and the
/// same lines from this crate's layout: compiled against the header, the two must be equal.
pub fn layout_check() -> (String, String) {
    let mut c = String::from("#include <stdio.h>\n#include \"rcr_plugin.h\"\nint main(void)\n{\n");
    let mut want = String::new();
    for s in structs() {
        let _ = writeln!(c, "\tprintf(\"{0} %zu\\n\", sizeof(struct {0}));", s.c);
        let _ = writeln!(want, "{} {}", s.c, s.size);
        for f in &s.fields {
            let _ = writeln!(c, "\tprintf(\"{0}.{1} %zu\\n\", offsetof(struct {0}, {1}));", s.c, f.name);
            let _ = writeln!(want, "{}.{} {}", s.c, f.name, f.offset);
        }
    }
    c.push_str("\treturn 0;\n}\n");
    (c, want)
}

//! Test fixture for rcr's end-to-end tests: a Rust plugin that panics in `dump_file` for bpf maps (the toy device).
//! The panic is caught by rcr-plugin-api's shim and reaches rcr as an error of that hook.

use rcr_plugin_api::{export_plugin, Claim, File, Host, Plugin};

#[derive(Default)]
pub struct Panicky;

impl Plugin for Panicky {
    fn dump_file(&self, _host: &Host<'_>, file: &File<'_>, _id: u32) -> Result<Claim, String> {
        if file.path() == "anon_inode:bpf-map" {
            panic!("test-panic: deliberate panic on fd {}", file.fd());
        }
        Ok(Claim::NotMine)
    }
}

export_plugin! {
    plugin: Panicky,
    name: "test-panic",
    version: env!("CARGO_PKG_VERSION"),
    hooks: [dump_file],
}

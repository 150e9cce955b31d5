//! Compiles the CRIU-compatible image protos in `proto/` with protox (pure Rust, so no system
//! `protoc` is needed) and generates Rust types with prost-build. The encoded
//! FileDescriptorSet is also written to `$OUT_DIR/image_descriptors.bin` and embedded by
//! `rcr_images::pb`, for the JSON conversion (prost-reflect). Every message gets a
//! `prost::Name` impl, which `ImageDir` checks against the image kind's message.
//!
//! `proto/rpc.proto` (CRIU's RPC, not an image kind) is compiled apart, into `$OUT_DIR/rpc/` and
//! `$OUT_DIR/rpc_descriptors.bin` (`rcr_images::rpc`): its message names would clash with the image
//! ones (`criu_opts` and opts.proto's `CRIU_Opts` are both `CriuOpts` in Rust), and the image
//! registry and JSON decoder must not see it.

use std::path::PathBuf;

/// The RPC protocol's file, compiled on its own.
const RPC_PROTO: &str = "rpc.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&proto_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto") && !p.ends_with(RPC_PROTO))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_files(files.iter().map(|f| f.strip_prefix(&proto_dir).unwrap_or(f)))?;

    // The encoded set keeps the custom (criu) field options, which prost_types drops.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("image_descriptors.bin"), compiler.encode_file_descriptor_set())?;

    prost_build::Config::new().enable_type_names().compile_fds(compiler.file_descriptor_set())?;

    let mut rpc = protox::Compiler::new([&proto_dir])?;
    rpc.include_source_info(false).open_file(RPC_PROTO)?;
    std::fs::write(out_dir.join("rpc_descriptors.bin"), rpc.encode_file_descriptor_set())?;
    let rpc_out = out_dir.join("rpc");
    std::fs::create_dir_all(&rpc_out)?;
    prost_build::Config::new().out_dir(&rpc_out).compile_fds(rpc.file_descriptor_set())?;
    Ok(())
}

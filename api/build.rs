//! Generates the gRPC code from `proto/sextant/v1/sextant.proto` with a vendored `protoc`, so
//! the build needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("sextant_descriptor.bin"))
        .compile_protos(&["proto/sextant/v1/sextant.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

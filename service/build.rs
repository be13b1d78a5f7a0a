//! Generates the gRPC code from `proto/sextant/v1/sextant.proto` with a vendored `protoc` (and
//! its copy of the well-known types), so the build needs no system protobuf compiler. Messages
//! carry their full names (`prost::Name`), which [`crate::service::typed`] uses to find each
//! one's descriptor for the JSON mapping.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("sextant_descriptor.bin"))
        .compile_with_config(
            config,
            &[std::path::PathBuf::from("proto/sextant/v1/sextant.proto")],
            &[std::path::PathBuf::from("proto"), well_known],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

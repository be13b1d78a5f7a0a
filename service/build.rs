//! Generates the gRPC code from `proto/sextant/v1/sextant.proto` with a vendored `protoc` (and
//! its copy of the well-known types), so the build needs no system protobuf compiler. Messages
//! carry their full names (`prost::Name`), which [`crate::service::typed`] uses to find each
//! one's descriptor for the JSON mapping.
//!
//! Every message that can be (no `oneof`, no well-known type, inside or below it) also derives
//! `serde::Deserialize` in the shape of its JSON document: proto field names, an explicit
//! `json_name` as the key, unset fields at their defaults, an undeclared field refused, a `Row`
//! read from the bare array it is in JSON. That lets a result document become its typed
//! answer in one serde pass ([`crate::typed::message`]) rather than through a dynamic message
//! and a transcode.

use std::collections::{HashMap, HashSet};

#[path = "src/json_key.rs"]
mod json_key;

use prost_types::{field_descriptor_proto::Type, DescriptorProto, FileDescriptorSet};

const PACKAGE: &str = "sextant.v1";
/// The message that holds one matrix row; in JSON, the row is a bare array.
const ROW: &str = ".sextant.v1.Row";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config
        .enable_type_names()
        .file_descriptor_set_path(out.join("sextant_descriptor.bin"))
        .type_attribute(".", "#[allow(clippy::all)]");
    let fds = config.load_fds(
        &[std::path::PathBuf::from("proto/sextant/v1/sextant.proto")],
        &[std::path::PathBuf::from("proto"), well_known],
    )?;
    derive_deserialize(&fds, &mut config);
    tonic_prost_build::configure().compile_fds_with_config(fds, config)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

/// Every message of the package by full name (`.sextant.v1.Goal`), nested ones (map entries)
/// included.
fn messages(fds: &FileDescriptorSet) -> HashMap<String, &DescriptorProto> {
    fn walk<'a>(
        prefix: &str,
        m: &'a DescriptorProto,
        into: &mut HashMap<String, &'a DescriptorProto>,
    ) {
        let name = format!("{prefix}.{}", m.name());
        for nested in &m.nested_type {
            walk(&name, nested, into);
        }
        into.insert(name, m);
    }
    let mut all = HashMap::new();
    for file in fds.file.iter().filter(|f| f.package() == PACKAGE) {
        for m in &file.message_type {
            walk(&format!(".{PACKAGE}"), m, &mut all);
        }
    }
    all
}

fn derive_deserialize(fds: &FileDescriptorSet, config: &mut prost_build::Config) {
    let all = messages(fds);
    // A message can derive when it has no real `oneof` (proto3 `optional` makes synthetic
    // ones, which prost writes as `Option`) and each message field's type can: start from
    // every message and drop those that cannot until nothing changes.
    let mut can: HashSet<&str> = all.keys().map(String::as_str).collect();
    loop {
        let cannot: Vec<&str> = can
            .iter()
            .copied()
            .filter(|name| {
                let m = all[*name];
                let real_oneof = m
                    .field
                    .iter()
                    .any(|f| f.oneof_index.is_some() && !f.proto3_optional());
                let field_cannot = m
                    .field
                    .iter()
                    .any(|f| f.r#type() == Type::Message && !can.contains(f.type_name()));
                real_oneof || field_cannot
            })
            .collect();
        if cannot.is_empty() {
            break;
        }
        for name in cannot {
            can.remove(name);
        }
    }
    for name in can {
        let m = all[name];
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            continue; // a map's entries are a `HashMap`, not a struct of their own
        }
        config.message_attribute(name, "#[derive(serde::Deserialize)]");
        if name == ROW {
            config.message_attribute(name, "#[serde(from = \"Vec<f64>\")]");
            continue;
        }
        config.message_attribute(name, "#[serde(default, deny_unknown_fields)]");
        for f in &m.field {
            let key = json_key::json_key(f.name(), f.json_name());
            if key != f.name() {
                config.field_attribute(
                    format!("{name}.{}", f.name()),
                    format!("#[serde(rename = \"{key}\")]"),
                );
            }
        }
    }
}

//! Breaking-change checks of the gRPC contract, offline, in the spirit of `buf breaking`
//! (its wire and JSON rules): the compiled `sextant.v1` descriptor against the baseline
//! committed in `service/proto/baseline/sextant.v1.binpb`, the contract clients were generated
//! from. A field, enum value or method may be added; one may not be removed (unless its number
//! and name are reserved), renumbered, renamed (the JSON mapping uses names), retyped, moved in
//! or out of a oneof or between singular, optional and repeated; a method may not change its
//! messages or streaming.
//!
//! A deliberate break is a new major version of the package (`sextant.v2`). After a compatible
//! change, record the new contract with
//! `SEXTANT_PROTO_BASELINE=write cargo test --release -p sextant-service --test proto_compatibility`.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

const PACKAGE: &str = "sextant.v1";

fn baseline_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/baseline/sextant.v1.binpb")
}

/// The `sextant.v1` files of a descriptor set, alone, in a stable order.
fn contract(set: &FileDescriptorSet) -> FileDescriptorSet {
    let mut file: Vec<FileDescriptorProto> = set
        .file
        .iter()
        .filter(|f| f.package() == PACKAGE)
        .cloned()
        .map(|mut f| {
            // Comments and positions are not the contract.
            f.source_code_info = None;
            f
        })
        .collect();
    file.sort_by(|a, b| a.name().cmp(b.name()));
    FileDescriptorSet { file }
}

fn current() -> FileDescriptorSet {
    contract(&FileDescriptorSet::decode(sextant_service::proto::DESCRIPTOR).unwrap())
}

/// Every message (nested ones too) and enum by full name.
fn index(
    set: &FileDescriptorSet,
) -> (
    BTreeMap<String, DescriptorProto>,
    BTreeMap<String, EnumDescriptorProto>,
) {
    fn walk(
        prefix: &str,
        message: &DescriptorProto,
        messages: &mut BTreeMap<String, DescriptorProto>,
        enums: &mut BTreeMap<String, EnumDescriptorProto>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            walk(&name, nested, messages, enums);
        }
        for e in &message.enum_type {
            enums.insert(format!("{name}.{}", e.name()), e.clone());
        }
        messages.insert(name, message.clone());
    }
    let (mut messages, mut enums) = (BTreeMap::new(), BTreeMap::new());
    for file in &set.file {
        let prefix = format!(".{}", file.package());
        for message in &file.message_type {
            walk(&prefix, message, &mut messages, &mut enums);
        }
        for e in &file.enum_type {
            enums.insert(format!("{prefix}.{}", e.name()), e.clone());
        }
    }
    (messages, enums)
}

fn reserved_number(message: &DescriptorProto, number: i32) -> bool {
    message
        .reserved_range
        .iter()
        .any(|r| (r.start()..r.end()).contains(&number))
}

/// What a field is on the wire and in JSON.
fn shape(message: &DescriptorProto, field: &FieldDescriptorProto) -> String {
    let oneof = field
        .oneof_index
        .filter(|_| !field.proto3_optional())
        .and_then(|i| message.oneof_decl.get(i as usize))
        .map(|o| o.name().to_string());
    format!(
        "{} {:?} {:?}{} {} oneof={:?}",
        field.name(),
        field.label(),
        field.r#type(),
        if field.proto3_optional() {
            " optional"
        } else {
            ""
        },
        field.type_name(),
        oneof
    )
}

/// Each way `new` breaks a client of `old`, in words.
fn breaking_changes(old: &FileDescriptorSet, new: &FileDescriptorSet) -> Vec<String> {
    let mut found = Vec::new();
    let ((old_messages, old_enums), (new_messages, new_enums)) = (index(old), index(new));
    for (name, before) in &old_messages {
        let Some(after) = new_messages.get(name) else {
            found.push(format!("message {name} removed"));
            continue;
        };
        for field in &before.field {
            let number = field.number();
            match after.field.iter().find(|f| f.number() == number) {
                None if reserved_number(after, number)
                    && after.reserved_name.iter().any(|n| n == field.name()) => {}
                None => found.push(format!(
                    "{name}: field {number} ({}) removed without reserving its number and name",
                    field.name()
                )),
                Some(now) if shape(before, field) != shape(after, now) => found.push(format!(
                    "{name}: field {number} changed from `{}` to `{}`",
                    shape(before, field),
                    shape(after, now)
                )),
                Some(_) => {}
            }
        }
    }
    for (name, before) in &old_enums {
        let Some(after) = new_enums.get(name) else {
            found.push(format!("enum {name} removed"));
            continue;
        };
        for value in &before.value {
            let kept = after.value.iter().find(|v| v.number() == value.number());
            let reserved = after
                .reserved_range
                .iter()
                .any(|r| (r.start()..=r.end()).contains(&value.number()));
            match kept {
                Some(v) if v.name() != value.name() => found.push(format!(
                    "{name}: value {} renamed from {} to {}",
                    value.number(),
                    value.name(),
                    v.name()
                )),
                None if !reserved => found.push(format!(
                    "{name}: value {} ({}) removed without reserving it",
                    value.number(),
                    value.name()
                )),
                _ => {}
            }
        }
    }
    let methods = |set: &FileDescriptorSet| -> BTreeMap<String, String> {
        set.file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .flat_map(|(package, s)| {
                s.method.iter().map(move |m| {
                    (
                        format!("{package}.{}/{}", s.name(), m.name()),
                        format!(
                            "{}{} -> {}{}",
                            if m.client_streaming() { "stream " } else { "" },
                            m.input_type(),
                            if m.server_streaming() { "stream " } else { "" },
                            m.output_type()
                        ),
                    )
                })
            })
            .collect()
    };
    let now = methods(new);
    for (method, signature) in methods(old) {
        match now.get(&method) {
            None => found.push(format!("method {method} removed")),
            Some(s) if *s != signature => {
                found.push(format!("method {method} changed from {signature} to {s}"))
            }
            Some(_) => {}
        }
    }
    found
}

#[test]
fn the_grpc_contract_has_no_breaking_change_against_its_baseline() {
    let now = current();
    if std::env::var("SEXTANT_PROTO_BASELINE").as_deref() == Ok("write") {
        std::fs::write(baseline_path(), now.encode_to_vec()).unwrap();
        return;
    }
    let bytes = std::fs::read(baseline_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with SEXTANT_PROTO_BASELINE=write",
            baseline_path().display()
        )
    });
    let baseline = FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let breaks = breaking_changes(&baseline, &now);
    assert!(
        breaks.is_empty(),
        "breaking changes against {}:\n{}",
        baseline_path().display(),
        breaks.join("\n")
    );
}

fn goal(f: &mut FileDescriptorProto) -> &mut DescriptorProto {
    f.message_type
        .iter_mut()
        .find(|m| m.name() == "Goal")
        .expect("a Goal message")
}

/// The check finds each kind of break it names, on the real contract changed one way at a time.
#[test]
fn each_kind_of_break_is_found() {
    let now = current();
    assert!(breaking_changes(&now, &now).is_empty());
    let changed = |edit: &dyn Fn(&mut FileDescriptorProto)| {
        let mut set = now.clone();
        edit(&mut set.file[0]);
        breaking_changes(&now, &set)
    };
    // A field retyped.
    let breaks = changed(&|f| {
        let field = &mut goal(f).field[0];
        field.set_type(prost_types::field_descriptor_proto::Type::String);
    });
    assert!(
        breaks.iter().any(|b| b.contains("Goal: field")),
        "{breaks:?}"
    );
    // A field renamed (the JSON mapping reads names).
    let breaks = changed(&|f| goal(f).field[0].name = Some("renamed".into()));
    assert!(breaks.iter().any(|b| b.contains("renamed")), "{breaks:?}");
    // A field removed, then removed with its number and name reserved (allowed).
    let breaks = changed(&|f| {
        goal(f).field.remove(0);
    });
    assert!(
        breaks.iter().any(|b| b.contains("removed without")),
        "{breaks:?}"
    );
    let breaks = changed(&|f| {
        let message = goal(f);
        let field = message.field.remove(0);
        message
            .reserved_range
            .push(prost_types::descriptor_proto::ReservedRange {
                start: field.number,
                end: Some(field.number() + 1),
            });
        message.reserved_name.push(field.name().to_string());
    });
    assert!(breaks.is_empty(), "{breaks:?}");
    // A field added (allowed).
    let breaks = changed(&|f| {
        let message = goal(f);
        let mut field = message.field[0].clone();
        field.number = Some(9_999);
        field.name = Some("added".into());
        message.field.push(field);
    });
    assert!(breaks.is_empty(), "{breaks:?}");
    // A method removed, and one whose answer changed.
    let breaks = changed(&|f| {
        f.service[0].method.remove(0);
    });
    assert!(breaks.iter().any(|b| b.starts_with("method")), "{breaks:?}");
    let breaks = changed(&|f| {
        f.service[0].method[0].output_type = Some(".sextant.v1.Goal".into());
    });
    assert!(
        breaks.iter().any(|b| b.contains("changed from")),
        "{breaks:?}"
    );
    // A message removed.
    let breaks = changed(&|f| f.message_type.retain(|m| m.name() != "Goal"));
    assert!(
        breaks
            .iter()
            .any(|b| b == "message .sextant.v1.Goal removed"),
        "{breaks:?}"
    );
}

//! A `.proto` field's key in the JSON documents: its proto name, unless the `.proto` gives it an
//! explicit `json_name` (`"95"`, `"self"`). protoc fills in `json_name` for every field, the
//! name in lowerCamelCase by default, so an explicit one is one that differs from that default.
//! Shared by the build script (the serde derives' renames) and OpenAPI (the answers' schemas).

/// The document's key of the field `name` whose descriptor gives `json_name`.
pub fn json_key(name: &str, json_name: &str) -> String {
    if json_name == lower_camel(name) {
        name.to_string()
    } else {
        json_name.to_string()
    }
}

/// protoc's default JSON name of a field: `success_probability` → `successProbability`.
fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

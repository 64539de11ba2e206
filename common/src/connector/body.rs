//! Reading and shaping mapped target bodies, for the connectors' targets: a field as text, a line
//! list to address.

use serde_json::Value;

/// The field at `pointer` as text (numbers as their JSON text; absent or null: empty).
pub(crate) fn text_field(body: &Value, pointer: &str) -> String {
    match body.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The mapped lines of a body's line list, as a mutable list (created empty if absent).
pub(crate) fn line_list<'a>(header: &'a mut Value, name: &str) -> &'a mut Vec<Value> {
    if !header.get(name).is_some_and(Value::is_array) {
        header[name] = Value::Array(Vec::new());
    }
    header[name].as_array_mut().expect("made an array above")
}

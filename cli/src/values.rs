//! Command-line arguments and JSON to [`Value`]s of a known [`Type`], and values back to JSON.
//!
//! Scalars are written plainly (`42`, `true`, `Ada`); structs, enums, lists and options as JSON
//! (`'{"x": 1, "y": 2}'`, `'"Red"'` or `'{"Rgb": [1, 2, 3]}'`, `'[1, 2]'`, `null`).

use interstice_abi::{Field, Type, TypeDef, TypeRegistry, Value};
use serde_json::Value as Json;

/// Why an argument does not fit its type; `path` locates it inside a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
pub struct ValueError {
    pub path: String,
    pub message: String,
}

fn fail(path: &str, message: impl Into<String>) -> ValueError {
    ValueError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Parses one command-line argument as a value of `ty`.
pub fn parse_arg(arg: &str, ty: &Type, registry: &TypeRegistry) -> Result<Value, ValueError> {
    let bad = |what: &str| fail("", format!("`{arg}` is not {what}"));
    Ok(match ty {
        Type::Bool => match arg {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("a bool (true or false)")),
        },
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            let n: u64 = arg
                .parse()
                .map_err(|_| bad(&format!("an unsigned integer ({ty})")))?;
            unsigned(n, ty, "")?
        }
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => {
            let n: i64 = arg
                .parse()
                .map_err(|_| bad(&format!("an integer ({ty})")))?;
            signed(n, ty, "")?
        }
        Type::F32 => Value::F32(arg.parse().map_err(|_| bad("an f32 (a number)"))?),
        Type::F64 => Value::F64(arg.parse().map_err(|_| bad("an f64 (a number)"))?),
        Type::String => Value::String(arg.to_owned()),
        Type::Bytes if arg.starts_with("0x") => Value::Bytes(hex(&arg[2..]).ok_or_else(|| {
            bad("bytes: write them as hex after 0x (0x00ff) or as a JSON array ([0, 255])")
        })?),
        Type::Option(inner) if arg == "null" => {
            let _ = inner;
            Value::Option(None)
        }
        // A JSON string is JSON: `'"hi"'` is `Some("hi")`, the way to write the string "null".
        Type::Option(_) if arg.starts_with('"') && serde_json::from_str::<Json>(arg).is_ok() => {
            from_json_str(arg, ty, registry)?
        }
        // `Option<u32>` accepts `5` as well as JSON, `Option<String>` a plain word.
        Type::Option(inner) if !matches!(**inner, Type::Named(_) | Type::List(_)) => {
            match parse_arg(arg, inner, registry) {
                Ok(v) => Value::Option(Some(Box::new(v))),
                Err(_) => from_json_str(arg, ty, registry)?,
            }
        }
        _ => from_json_str(arg, ty, registry)?,
    })
}

fn from_json_str(arg: &str, ty: &Type, registry: &TypeRegistry) -> Result<Value, ValueError> {
    let json: Json = serde_json::from_str(arg).map_err(|e| {
        fail(
            "",
            format!("`{arg}` is not valid JSON for a {ty} ({e}); quote JSON for the shell, e.g. '{{\"field\": 1}}'"),
        )
    })?;
    from_json(&json, ty, registry)
}

/// Converts JSON to a value of `ty`. Structs are objects with exactly their field names (or
/// arrays, positionally); enum variants are `"Name"` (no fields) or `{"Name": payload}` where the
/// payload is the only field, an array of the fields, or an object of named fields.
pub fn from_json(json: &Json, ty: &Type, registry: &TypeRegistry) -> Result<Value, ValueError> {
    convert(json, ty, registry, "$", 0)
}

const MAX_DEPTH: u32 = 64;

fn describe(json: &Json) -> String {
    let text = json.to_string();
    if text.len() > 40 {
        format!("{}…", &text[..text.floor_char_boundary(40)])
    } else {
        text
    }
}

fn convert(
    json: &Json,
    ty: &Type,
    registry: &TypeRegistry,
    path: &str,
    depth: u32,
) -> Result<Value, ValueError> {
    if depth > MAX_DEPTH {
        return Err(fail(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let expected = |what: &str| fail(path, format!("expected {what}, found {}", describe(json)));
    Ok(match ty {
        Type::Bool => Value::Bool(json.as_bool().ok_or_else(|| expected("a bool"))?),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            let n = json
                .as_u64()
                .ok_or_else(|| expected(&format!("an unsigned integer ({ty})")))?;
            unsigned(n, ty, path)?
        }
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => {
            let n = json
                .as_i64()
                .ok_or_else(|| expected(&format!("an integer ({ty})")))?;
            signed(n, ty, path)?
        }
        Type::F32 => Value::F32(json.as_f64().ok_or_else(|| expected("a number"))? as f32),
        Type::F64 => Value::F64(json.as_f64().ok_or_else(|| expected("a number"))?),
        Type::String => Value::String(json.as_str().ok_or_else(|| expected("a string"))?.into()),
        Type::Bytes => match json {
            Json::String(s) if s.starts_with("0x") => {
                Value::Bytes(hex(&s[2..]).ok_or_else(|| expected("hex bytes (0x00ff)"))?)
            }
            Json::Array(items) => Value::Bytes(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        b.as_u64()
                            .and_then(|b| u8::try_from(b).ok())
                            .ok_or_else(|| {
                                fail(&format!("{path}[{i}]"), "expected a byte (0..=255)")
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(expected("bytes: \"0x00ff\" or [0, 255]")),
        },
        Type::List(inner) => {
            let items = json
                .as_array()
                .ok_or_else(|| expected(&format!("a list of {inner}")))?;
            Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        convert(item, inner, registry, &format!("{path}[{i}]"), depth + 1)
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Option(inner) => match json {
            Json::Null => Value::Option(None),
            other => Value::Option(Some(Box::new(convert(
                other,
                inner,
                registry,
                path,
                depth + 1,
            )?))),
        },
        Type::Named(name) => {
            let def = registry.get(name).map_err(|e| fail(path, e.to_string()))?;
            match def {
                TypeDef::Struct { fields, .. } => {
                    Value::Struct(fields_from(json, fields, registry, path, depth, name)?)
                }
                TypeDef::Enum { variants, .. } => {
                    let names = || {
                        variants
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let (variant_name, payload) = match json {
                        Json::String(s) => (s.as_str(), None),
                        Json::Object(map) if map.len() == 1 => {
                            let (k, v) = map.iter().next().ok_or_else(|| expected("a variant"))?;
                            (k.as_str(), Some(v))
                        }
                        _ => {
                            return Err(expected(&format!(
                                "a variant of {name}: \"Variant\" or {{\"Variant\": fields}} (variants: {})",
                                names()
                            )));
                        }
                    };
                    let index = variants
                        .iter()
                        .position(|v| v.name == variant_name)
                        .ok_or_else(|| {
                            fail(
                                path,
                                format!(
                                    "{name} has no variant `{variant_name}`; variants: {}",
                                    names()
                                ),
                            )
                        })?;
                    let def = &variants[index];
                    let vpath = format!("{path}.{variant_name}");
                    let fields = match (payload, def.fields.as_slice()) {
                        (None, []) => Vec::new(),
                        (None, _) => {
                            return Err(fail(
                                path,
                                format!(
                                    "variant `{variant_name}` has fields; write {{\"{variant_name}\": ...}}"
                                ),
                            ));
                        }
                        (Some(Json::Null), []) => Vec::new(),
                        (Some(payload), [only]) if !payload.is_array() && !payload.is_object() => {
                            vec![convert(payload, &only.ty, registry, &vpath, depth + 1)?]
                        }
                        (Some(payload), [only]) if only.name == "0" && !payload.is_array() => {
                            vec![convert(payload, &only.ty, registry, &vpath, depth + 1)?]
                        }
                        (Some(payload), fields) => {
                            fields_from(payload, fields, registry, &vpath, depth, variant_name)?
                        }
                    };
                    Value::Enum {
                        variant: u32::try_from(index)
                            .map_err(|_| fail(path, "too many variants"))?,
                        fields,
                    }
                }
            }
        }
    })
}

fn fields_from(
    json: &Json,
    fields: &[Field],
    registry: &TypeRegistry,
    path: &str,
    depth: u32,
    owner: &str,
) -> Result<Vec<Value>, ValueError> {
    match json {
        Json::Object(map) => {
            if let Some(unknown) = map.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
                return Err(fail(
                    path,
                    format!(
                        "{owner} has no field `{unknown}`; fields: {}",
                        field_list(fields)
                    ),
                ));
            }
            fields
                .iter()
                .map(|f| {
                    let value = map.get(&f.name).ok_or_else(|| {
                        fail(
                            path,
                            format!("missing field `{}: {}` of {owner}", f.name, f.ty),
                        )
                    })?;
                    convert(
                        value,
                        &f.ty,
                        registry,
                        &format!("{path}.{}", f.name),
                        depth + 1,
                    )
                })
                .collect()
        }
        Json::Array(items) if items.len() == fields.len() => fields
            .iter()
            .zip(items)
            .map(|(f, v)| convert(v, &f.ty, registry, &format!("{path}.{}", f.name), depth + 1))
            .collect(),
        _ => Err(fail(
            path,
            format!(
                "expected {owner} as an object {{{}}}, found {}",
                field_list(fields),
                describe(json)
            ),
        )),
    }
}

fn field_list(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.name, f.ty))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unsigned(n: u64, ty: &Type, path: &str) -> Result<Value, ValueError> {
    let range = || fail(path, format!("{n} does not fit in a {ty}"));
    Ok(match ty {
        Type::U8 => Value::U8(u8::try_from(n).map_err(|_| range())?),
        Type::U16 => Value::U16(u16::try_from(n).map_err(|_| range())?),
        Type::U32 => Value::U32(u32::try_from(n).map_err(|_| range())?),
        _ => Value::U64(n),
    })
}

fn signed(n: i64, ty: &Type, path: &str) -> Result<Value, ValueError> {
    let range = || fail(path, format!("{n} does not fit in a {ty}"));
    Ok(match ty {
        Type::I8 => Value::I8(i8::try_from(n).map_err(|_| range())?),
        Type::I16 => Value::I16(i16::try_from(n).map_err(|_| range())?),
        Type::I32 => Value::I32(i32::try_from(n).map_err(|_| range())?),
        _ => Value::I64(n),
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A value as JSON, with field and variant names from `ty` (the inverse of [`from_json`];
/// bytes print as `"0x…"`).
pub fn to_json(value: &Value, ty: &Type, registry: &TypeRegistry) -> Json {
    let float = |f: f64| {
        serde_json::Number::from_f64(f).map_or_else(|| Json::String(f.to_string()), Json::Number)
    };
    match (value, ty) {
        (Value::Bool(b), _) => Json::Bool(*b),
        (Value::U8(n), _) => Json::from(*n),
        (Value::U16(n), _) => Json::from(*n),
        (Value::U32(n), _) => Json::from(*n),
        (Value::U64(n), _) => Json::from(*n),
        (Value::I8(n), _) => Json::from(*n),
        (Value::I16(n), _) => Json::from(*n),
        (Value::I32(n), _) => Json::from(*n),
        (Value::I64(n), _) => Json::from(*n),
        (Value::F32(f), _) => float(f64::from(*f)),
        (Value::F64(f), _) => float(*f),
        (Value::String(s), _) => Json::String(s.clone()),
        (Value::Bytes(b), _) => Json::String(format!(
            "0x{}",
            b.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        (Value::List(items), Type::List(inner)) => {
            Json::Array(items.iter().map(|v| to_json(v, inner, registry)).collect())
        }
        (Value::Option(None), _) => Json::Null,
        (Value::Option(Some(v)), Type::Option(inner)) => to_json(v, inner, registry),
        (Value::Struct(values), Type::Named(name)) => match registry.get(name) {
            Ok(TypeDef::Struct { fields, .. }) => named_fields(values, fields, registry),
            _ => untyped(value),
        },
        (Value::Enum { variant, fields }, Type::Named(name)) => match registry.get(name) {
            Ok(TypeDef::Enum { variants, .. }) => match variants.get(*variant as usize) {
                Some(def) if def.fields.is_empty() => Json::String(def.name.clone()),
                Some(def) => {
                    let payload = match def.fields.as_slice() {
                        [only] if only.name == "0" => to_json(&fields[0], &only.ty, registry),
                        defs if defs.first().is_some_and(|f| f.name == "0") => Json::Array(
                            fields
                                .iter()
                                .zip(defs)
                                .map(|(v, f)| to_json(v, &f.ty, registry))
                                .collect(),
                        ),
                        defs => named_fields(fields, defs, registry),
                    };
                    let mut map = serde_json::Map::new();
                    map.insert(def.name.clone(), payload);
                    Json::Object(map)
                }
                None => untyped(value),
            },
            _ => untyped(value),
        },
        _ => untyped(value),
    }
}

fn named_fields(values: &[Value], fields: &[Field], registry: &TypeRegistry) -> Json {
    Json::Object(
        fields
            .iter()
            .zip(values)
            .map(|(f, v)| (f.name.clone(), to_json(v, &f.ty, registry)))
            .collect(),
    )
}

/// A value whose type does not match: print it without names rather than fail.
fn untyped(value: &Value) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// `hello(name: String)`.
pub fn signature(name: &str, args: &[Field]) -> String {
    format!("{name}({})", field_list(args))
}

#[cfg(test)]
mod tests {
    use interstice_abi::Variant;
    use serde_json::json;

    use super::*;

    fn registry() -> TypeRegistry {
        TypeRegistry::new([
            TypeDef::Struct {
                name: "Point".into(),
                fields: vec![Field::new("x", Type::I32), Field::new("y", Type::I32)],
            },
            TypeDef::Enum {
                name: "Shape".into(),
                variants: vec![
                    Variant {
                        name: "Empty".into(),
                        fields: vec![],
                    },
                    Variant {
                        name: "Dot".into(),
                        fields: vec![Field::new("0", Type::Named("Point".into()))],
                    },
                    Variant {
                        name: "Line".into(),
                        fields: vec![
                            Field::new("from", Type::Named("Point".into())),
                            Field::new("to", Type::Named("Point".into())),
                        ],
                    },
                ],
            },
        ])
        .unwrap()
    }

    fn named(name: &str) -> Type {
        Type::Named(name.into())
    }

    fn point(x: i32, y: i32) -> Value {
        Value::Struct(vec![Value::I32(x), Value::I32(y)])
    }

    /// Parses `arg` as `ty`, checks the result, and checks that it prints back to the same value.
    fn check(arg: &str, ty: &Type, expected: Value) {
        let registry = registry();
        let value = parse_arg(arg, ty, &registry).unwrap_or_else(|e| panic!("{arg}: {e}"));
        assert_eq!(value, expected, "{arg}");
        ty.check(&value, &registry).unwrap();
        let json = to_json(&value, ty, &registry);
        assert_eq!(from_json(&json, ty, &registry).unwrap(), expected, "{json}");
    }

    fn check_err(arg: &str, ty: &Type, message: &str) {
        let err = parse_arg(arg, ty, &registry()).unwrap_err().to_string();
        assert!(err.contains(message), "{arg}: `{err}` lacks `{message}`");
    }

    #[test]
    fn scalars_are_written_plainly() {
        check("true", &Type::Bool, Value::Bool(true));
        check("255", &Type::U8, Value::U8(255));
        check("-7", &Type::I16, Value::I16(-7));
        check("18446744073709551615", &Type::U64, Value::U64(u64::MAX));
        check("1.5", &Type::F64, Value::F64(1.5));
        check("Ada Lovelace", &Type::String, Value::from("Ada Lovelace"));
        check("0x00ff", &Type::Bytes, Value::Bytes(vec![0, 255]));
        check("[1, 2]", &Type::Bytes, Value::Bytes(vec![1, 2]));
    }

    #[test]
    fn options_lists_structs_and_enums_are_json() {
        let opt = Type::Option(Box::new(Type::U32));
        check("null", &opt, Value::Option(None));
        check("5", &opt, Value::Option(Some(Box::new(Value::U32(5)))));
        let text = Type::Option(Box::new(Type::String));
        let some = |s: &str| Value::Option(Some(Box::new(Value::String(s.into()))));
        check("\"hi\"", &text, some("hi"));
        check("hi", &text, some("hi"));
        check("\"null\"", &text, some("null"));
        check("null", &text, Value::Option(None));
        // Not JSON after all: the word as it is.
        check("\"hi", &text, some("\"hi"));
        check(
            "[1, 2, 3]",
            &Type::List(Box::new(Type::U16)),
            Value::List(vec![Value::U16(1), Value::U16(2), Value::U16(3)]),
        );
        check(r#"{"x": 1, "y": -2}"#, &named("Point"), point(1, -2));
        check("[3, 4]", &named("Point"), point(3, 4));
        check(
            r#""Empty""#,
            &named("Shape"),
            Value::Enum {
                variant: 0,
                fields: vec![],
            },
        );
        check(
            r#"{"Dot": {"x": 1, "y": 2}}"#,
            &named("Shape"),
            Value::Enum {
                variant: 1,
                fields: vec![point(1, 2)],
            },
        );
        check(
            r#"{"Line": {"from": [0, 0], "to": {"x": 1, "y": 1}}}"#,
            &named("Shape"),
            Value::Enum {
                variant: 2,
                fields: vec![point(0, 0), point(1, 1)],
            },
        );
        let list = Type::List(Box::new(Type::Option(Box::new(named("Point")))));
        check(
            r#"[null, {"x": 5, "y": 6}]"#,
            &list,
            Value::List(vec![
                Value::Option(None),
                Value::Option(Some(Box::new(point(5, 6)))),
            ]),
        );
    }

    #[test]
    fn errors_name_the_place_and_what_was_expected() {
        check_err("300", &Type::U8, "300 does not fit in a u8");
        check_err("-1", &Type::U32, "`-1` is not an unsigned integer (u32)");
        check_err("yes", &Type::Bool, "not a bool (true or false)");
        check_err("0xabc", &Type::Bytes, "hex after 0x");
        check_err(
            r#"{"x": 1}"#,
            &named("Point"),
            "missing field `y: i32` of Point",
        );
        check_err(
            r#"{"x": 1, "y": 2, "z": 3}"#,
            &named("Point"),
            "Point has no field `z`; fields: x: i32, y: i32",
        );
        check_err(
            r#"{"x": 1, "y": "two"}"#,
            &named("Point"),
            r#"at $.y: expected an integer (i32), found "two""#,
        );
        check_err(
            r#""Circle""#,
            &named("Shape"),
            "Shape has no variant `Circle`; variants: Empty, Dot, Line",
        );
        check_err(r#""Dot""#, &named("Shape"), "variant `Dot` has fields");
        check_err("{x: 1}", &named("Point"), "is not valid JSON for a Point");
        check_err(
            "[1, 300]",
            &Type::List(Box::new(Type::U8)),
            "at $[1]: 300 does not fit in a u8",
        );
    }

    #[test]
    fn signatures_read_like_rust() {
        assert_eq!(
            signature("hello", &[Field::new("name", Type::String)]),
            "hello(name: String)"
        );
        assert_eq!(signature("get", &[]), "get()");
    }

    #[test]
    fn nan_and_bytes_print_without_failing() {
        let registry = registry();
        assert_eq!(
            to_json(&Value::F64(f64::NAN), &Type::F64, &registry),
            json!("NaN")
        );
        assert_eq!(
            to_json(&Value::Bytes(vec![1, 171]), &Type::Bytes, &registry),
            json!("0x01ab")
        );
    }
}

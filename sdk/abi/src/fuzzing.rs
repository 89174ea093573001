//! What the fuzz targets in `fuzz/` run, and the tests that replay their corpus: each function
//! takes arbitrary bytes, must not panic, and asserts its oracle. Not part of the API.

use crate::{
    ABI_VERSION, Field, ModuleSchema, Type, TypeDef, TypeRegistry, Variant, decode, encode,
};

/// The types the value codec is fuzzed with: every kind of type, nested, and user types.
fn types() -> (Vec<Type>, TypeRegistry) {
    let named = |n: &str| Type::Named(n.to_owned());
    let registry = TypeRegistry::new([
        TypeDef::Struct {
            name: "Point".into(),
            fields: vec![
                Field::new("x", Type::F32),
                Field::new("label", Type::Option(Box::new(Type::String))),
            ],
        },
        TypeDef::Enum {
            name: "Shape".into(),
            variants: vec![
                Variant {
                    name: "Empty".into(),
                    fields: vec![],
                },
                Variant {
                    name: "Path".into(),
                    fields: vec![Field::new("points", Type::List(Box::new(named("Point"))))],
                },
            ],
        },
    ])
    .expect("the fuzzing types are valid");
    let types = vec![
        Type::Bool,
        Type::U8,
        Type::U16,
        Type::U32,
        Type::U64,
        Type::I8,
        Type::I16,
        Type::I32,
        Type::I64,
        Type::F32,
        Type::F64,
        Type::String,
        Type::Bytes,
        Type::List(Box::new(Type::Option(Box::new(Type::U64)))),
        Type::List(Box::new(Type::List(Box::new(Type::String)))),
        named("Point"),
        named("Shape"),
        Type::Option(Box::new(named("Shape"))),
    ];
    (types, registry)
}

/// The value codec (`decode`, `encode`): the first byte picks a type, the rest is decoded as
/// it. What decodes encodes back to bytes that decode to the same value.
pub fn value_codec(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let (types, registry) = types();
    let ty = &types[usize::from(pick) % types.len()];
    let Ok(value) = decode(bytes, ty, &registry) else {
        return;
    };
    let again = encode(&value);
    let back = decode(&again, ty, &registry).expect("what the codec encodes, it decodes");
    // Compared as bytes, so that a NaN equals itself.
    assert_eq!(
        encode(&back),
        again,
        "{ty}: the round trip changed the value"
    );
}

/// The module schema reader (`ModuleSchema::from_bytes`, then `validate`), which reads what a
/// guest's `__interstice_describe` returns: anything that reads writes back to a schema that
/// reads the same, and validating never panics.
pub fn module_schema(data: &[u8]) {
    let Ok(schema) = ModuleSchema::from_bytes(data) else {
        return;
    };
    let again = ModuleSchema::from_bytes(&schema.to_bytes()).expect("a written schema reads");
    assert_eq!(again, schema, "the schema changed on a round trip");
    let _ = schema.validate(ABI_VERSION);
}

/// The committed corpus of fuzz target `target` (`fuzz/corpus/<target>/`), for the tests that
/// replay it on every build: inputs the fuzzer kept because each reached new code.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of `{target}` at {}: {e}", dir.display()));
    let mut inputs: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_codec_corpus_replays() {
        let inputs = corpus("value_codec");
        assert!(!inputs.is_empty(), "the corpus is committed");
        for (_, bytes) in inputs {
            value_codec(&bytes);
        }
    }

    #[test]
    fn the_module_schema_corpus_replays() {
        let inputs = corpus("module_schema");
        assert!(!inputs.is_empty(), "the corpus is committed");
        for (_, bytes) in inputs {
            module_schema(&bytes);
        }
    }
}

//! The descriptors a module passes as bytes: a render pipeline, the entries of a bind group.
//!
//! They use the ABI's positional encoding (`interstice_abi::encode`): structs are their fields
//! in order, enums a varint variant index then its fields, lists a varint count then their
//! items. The SDK writes them with `#[interstice_type]` structs of the same shape
//! (`interstice_sdk::gpu`); `tests/all/node_wire.rs` checks that both agree. Nothing here
//! trusts the bytes: counts are bounded by the input, nesting and tags are checked, and
//! trailing bytes are refused.

use interstice_abi::{DecodeError, IntersticeType, Reader};

use crate::engine::{BindingDesc, PipelineDesc, VertexAttributeDesc, VertexBufferDesc};

/// Most vertex buffers or attributes a descriptor may list, far above any device's limits;
/// the engine checks the device's own.
const MAX_ITEMS: usize = 64;

fn list<T>(
    reader: &mut Reader<'_>,
    what: &str,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, String> {
    let n = reader.count().map_err(|e| e.to_string())?;
    if n > MAX_ITEMS {
        return Err(format!("{n} {what} listed; at most {MAX_ITEMS}"));
    }
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(item(reader).map_err(|e| e.to_string())?);
    }
    Ok(items)
}

/// A `u32` code written as an enum's variant index (a varint).
fn variant(reader: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let offset = reader.pos();
    let tag = reader.varint()?;
    u32::try_from(tag).map_err(|_| reader.bad_variant(tag, offset))
}

/// `RenderPipelineDesc { shader, vertex_entry, fragment_entry, vertex_buffers:
/// [VertexBufferLayout { stride: u64, per_instance: bool, attributes: [VertexAttribute {
/// format, offset: u64, location: u32 }] }], topology, target_format, alpha_blend: bool }`;
/// `format`, `topology` and `target_format` are enums whose variant index is the engine's code.
pub fn pipeline(bytes: &[u8]) -> Result<PipelineDesc, String> {
    let mut r = Reader::new(bytes);
    let shader = u64::decode(&mut r).map_err(|e| e.to_string())?;
    let vertex_entry = entry_point(&mut r)?;
    let fragment_entry = entry_point(&mut r)?;
    let vertex_buffers = list(&mut r, "vertex buffers", |r| {
        let stride = u64::decode(r)?;
        let per_instance = bool::decode(r)?;
        let n = r.count()?;
        let mut attributes = Vec::with_capacity(n.min(MAX_ITEMS));
        for _ in 0..n.min(MAX_ITEMS + 1) {
            attributes.push(VertexAttributeDesc {
                format: variant(r)?,
                offset: u64::decode(r)?,
                location: u32::decode(r)?,
            });
        }
        Ok(VertexBufferDesc {
            stride,
            per_instance,
            attributes,
        })
    })?;
    if let Some(vb) = vertex_buffers
        .iter()
        .find(|vb| vb.attributes.len() > MAX_ITEMS)
    {
        return Err(format!(
            "{}+ attributes in one vertex buffer; at most {MAX_ITEMS}",
            vb.attributes.len()
        ));
    }
    let topology = variant(&mut r).map_err(|e| e.to_string())?;
    let target_format = variant(&mut r).map_err(|e| e.to_string())?;
    let alpha_blend = bool::decode(&mut r).map_err(|e| e.to_string())?;
    r.finish().map_err(|e| e.to_string())?;
    Ok(PipelineDesc {
        shader,
        vertex_entry,
        fragment_entry,
        vertex_buffers,
        topology,
        target_format,
        alpha_blend,
    })
}

fn entry_point(r: &mut Reader<'_>) -> Result<String, String> {
    let name = String::decode(r).map_err(|e| e.to_string())?;
    if name.is_empty() || name.len() > 256 {
        return Err(format!(
            "entry point names are 1 to 256 bytes, not {}",
            name.len()
        ));
    }
    Ok(name)
}

/// `[BindGroupEntry]`, an enum: `Buffer { binding: u32, buffer: u64, offset: u64, size: u64 }`
/// (0), `Texture { binding: u32, texture: u64 }` (1), `Sampler { binding: u32, sampler: u64 }`
/// (2).
pub fn bindings(bytes: &[u8]) -> Result<Vec<BindingDesc>, String> {
    let mut r = Reader::new(bytes);
    let entries = list(&mut r, "bind group entries", |r| {
        let offset = r.pos();
        let tag = r.varint()?;
        Ok(match tag {
            0 => BindingDesc::Buffer {
                binding: u32::decode(r)?,
                buffer: u64::decode(r)?,
                offset: u64::decode(r)?,
                size: u64::decode(r)?,
            },
            1 => BindingDesc::Texture {
                binding: u32::decode(r)?,
                texture: u64::decode(r)?,
            },
            2 => BindingDesc::Sampler {
                binding: u32::decode(r)?,
                sampler: u64::decode(r)?,
            },
            other => return Err(r.bad_variant(other, offset)),
        })
    })?;
    r.finish().map_err(|e| e.to_string())?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use interstice_abi::{Value, encode};

    use super::*;

    fn attribute(format: u32, offset: u64, location: u32) -> Value {
        Value::Struct(vec![
            Value::Enum {
                variant: format,
                fields: vec![],
            },
            Value::U64(offset),
            Value::U32(location),
        ])
    }

    fn unit(variant: u32) -> Value {
        Value::Enum {
            variant,
            fields: vec![],
        }
    }

    #[test]
    fn a_pipeline_decodes_from_the_abi_encoding() {
        let bytes = encode(&Value::Struct(vec![
            Value::U64(0x1_0000_0003),
            Value::from("vs"),
            Value::from("fs"),
            Value::List(vec![Value::Struct(vec![
                Value::U64(8),
                Value::Bool(false),
                Value::List(vec![attribute(1, 0, 0)]),
            ])]),
            unit(0),
            unit(0),
            Value::Bool(true),
        ]));
        let desc = pipeline(&bytes).unwrap();
        assert_eq!(desc.shader, 0x1_0000_0003);
        assert_eq!(
            (desc.vertex_entry.as_str(), desc.fragment_entry.as_str()),
            ("vs", "fs")
        );
        assert_eq!(desc.vertex_buffers.len(), 1);
        assert_eq!(desc.vertex_buffers[0].attributes[0].format, 1);
        assert!(desc.alpha_blend);
        // Truncated, trailing, or listing too much: refused with a message, never a panic.
        for cut in 0..bytes.len() {
            assert!(pipeline(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(pipeline(&longer).is_err());
        let many = encode(&Value::Struct(vec![
            Value::U64(1),
            Value::from("vs"),
            Value::from("fs"),
            Value::List(vec![Value::Struct(vec![
                Value::U64(8),
                Value::Bool(false),
                Value::List((0..100).map(|i| attribute(0, 0, i)).collect()),
            ])]),
            unit(0),
            unit(0),
            Value::Bool(false),
        ]));
        assert!(pipeline(&many).unwrap_err().contains("attributes"));
    }

    #[test]
    fn bind_group_entries_decode_and_unknown_kinds_are_refused() {
        let bytes = encode(&Value::List(vec![
            Value::Enum {
                variant: 0,
                fields: vec![Value::U32(0), Value::U64(7), Value::U64(0), Value::U64(16)],
            },
            Value::Enum {
                variant: 2,
                fields: vec![Value::U32(1), Value::U64(9)],
            },
        ]));
        assert_eq!(
            bindings(&bytes).unwrap(),
            [
                BindingDesc::Buffer {
                    binding: 0,
                    buffer: 7,
                    offset: 0,
                    size: 16
                },
                BindingDesc::Sampler {
                    binding: 1,
                    sampler: 9
                }
            ]
        );
        let bad = encode(&Value::List(vec![Value::Enum {
            variant: 3,
            fields: vec![],
        }]));
        assert!(bindings(&bad).is_err());
    }
}

//! Per-module GPU resources behind generation-checked handles, with byte and count budgets.
//!
//! A handle is `generation << 32 | slot`, generations start at 1, so `0` is never a live handle
//! (the wasm glue may use it for "none"). Freeing a slot bumps its generation, so a stale copy of
//! a freed handle is refused even after the slot is reused; a slot whose generation would wrap
//! is retired for good.

use std::collections::HashMap;
use std::fmt;

use crate::error::{GpuError, Result};

/// The module a resource belongs to, as numbered by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub u32);

/// A module's reference to one of its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    slot: u32,
    generation: u32,
}

impl Handle {
    /// The value that crosses the wasm boundary.
    pub fn to_bits(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }

    /// The handle a module sent; whether it is live is checked on use.
    pub fn from_bits(bits: u64) -> Self {
        Handle {
            slot: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// What a handle refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourceKind {
    ShaderModule,
    Buffer,
    Texture,
    Sampler,
    BindGroup,
    RenderPipeline,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::ShaderModule => "shader module",
            ResourceKind::Buffer => "buffer",
            ResourceKind::Texture => "texture",
            ResourceKind::Sampler => "sampler",
            ResourceKind::BindGroup => "bind group",
            ResourceKind::RenderPipeline => "render pipeline",
        })
    }
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandleFault {
    /// No resource was ever created under this handle.
    Unknown,
    /// The resource was freed (or its module's resources were released).
    Freed,
    /// The resource belongs to another module.
    Foreign,
    /// The handle is live but names a resource of another kind.
    WrongKind(ResourceKind),
}

impl fmt::Display for HandleFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleFault::Unknown => f.write_str("no such resource was ever created"),
            HandleFault::Freed => f.write_str("the resource was freed"),
            HandleFault::Foreign => f.write_str("the resource belongs to another module"),
            HandleFault::WrongKind(kind) => write!(f, "it names a {kind}"),
        }
    }
}

/// Limits on what one module may hold on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of buffers and textures. By default, 256 MiB.
    pub max_bytes: u64,
    /// Resources of every kind. By default, 4096.
    pub max_resources: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_bytes: 256 << 20,
            max_resources: 4096,
        }
    }
}

/// What a module holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub resources: u32,
}

/// What releasing a module's resources freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Released {
    pub bytes: u64,
    pub resources: u32,
}

/// A vertex buffer slot a pipeline reads, kept to check draws against bound buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VertexSlot {
    pub stride: u64,
    pub per_instance: bool,
}

/// The wgpu object behind a handle, with what the host checks against.
#[derive(Debug)]
pub(crate) enum Resource {
    ShaderModule(wgpu::ShaderModule),
    Buffer {
        buffer: wgpu::Buffer,
        usage: wgpu::BufferUsages,
    },
    Texture {
        texture: wgpu::Texture,
        view: wgpu::TextureView,
    },
    Sampler(wgpu::Sampler),
    BindGroup(wgpu::BindGroup),
    RenderPipeline {
        pipeline: wgpu::RenderPipeline,
        vertex_slots: Vec<VertexSlot>,
        target: wgpu::TextureFormat,
    },
}

impl Resource {
    pub(crate) fn kind(&self) -> ResourceKind {
        match self {
            Resource::ShaderModule(_) => ResourceKind::ShaderModule,
            Resource::Buffer { .. } => ResourceKind::Buffer,
            Resource::Texture { .. } => ResourceKind::Texture,
            Resource::Sampler(_) => ResourceKind::Sampler,
            Resource::BindGroup(_) => ResourceKind::BindGroup,
            Resource::RenderPipeline { .. } => ResourceKind::RenderPipeline,
        }
    }

    /// Frees the GPU memory now rather than when the last reference (a bind group, a recorded
    /// frame) goes, so the budget tells the truth; later use is a validation error.
    fn destroy(&self) {
        match self {
            Resource::Buffer { buffer, .. } => buffer.destroy(),
            Resource::Texture { texture, .. } => texture.destroy(),
            _ => {}
        }
    }
}

#[derive(Debug)]
struct Entry {
    owner: OwnerId,
    bytes: u64,
    resource: Resource,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

#[derive(Debug, Default)]
struct Account {
    usage: Usage,
    budget: Option<Budget>,
}

/// Every module's resources on one device.
#[derive(Debug, Default)]
pub struct ResourceTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    accounts: HashMap<OwnerId, Account>,
    default_budget: Budget,
}

impl ResourceTable {
    pub fn new(default_budget: Budget) -> Self {
        ResourceTable {
            default_budget,
            ..Default::default()
        }
    }

    /// Sets one module's budget; by default it gets the table's. What it already holds stays.
    pub fn set_budget(&mut self, owner: OwnerId, budget: Budget) {
        self.accounts.entry(owner).or_default().budget = Some(budget);
    }

    pub fn budget(&self, owner: OwnerId) -> Budget {
        self.accounts
            .get(&owner)
            .and_then(|a| a.budget)
            .unwrap_or(self.default_budget)
    }

    pub fn usage(&self, owner: OwnerId) -> Usage {
        self.accounts
            .get(&owner)
            .map(|a| a.usage)
            .unwrap_or_default()
    }

    /// Live resources of every module.
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.entry.is_some()).count()
    }

    /// Checks that `owner` may create one more resource of `bytes`; call before creating it on
    /// the device, so a refused request allocates nothing.
    pub fn admit(&self, owner: OwnerId, bytes: u64) -> Result<()> {
        let budget = self.budget(owner);
        let usage = self.usage(owner);
        if usage.resources >= budget.max_resources {
            return Err(GpuError::TooManyResources {
                limit: budget.max_resources,
            });
        }
        if usage.bytes.saturating_add(bytes) > budget.max_bytes {
            return Err(GpuError::OverBudget {
                requested: bytes,
                used: usage.bytes,
                budget: budget.max_bytes,
            });
        }
        Ok(())
    }

    /// Stores a created resource; `admit` must have accepted it.
    pub(crate) fn insert(
        &mut self,
        owner: OwnerId,
        bytes: u64,
        resource: Resource,
    ) -> Result<Handle> {
        self.admit(owner, bytes)?;
        let entry = Entry {
            owner,
            bytes,
            resource,
        };
        let handle = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.entry = Some(entry);
                Handle {
                    slot,
                    generation: s.generation,
                }
            }
            None => {
                let slot = u32::try_from(self.slots.len())
                    .map_err(|_| GpuError::Invalid("the node's GPU handle space is full".into()))?;
                self.slots.push(Slot {
                    generation: 1,
                    entry: Some(entry),
                });
                Handle {
                    slot,
                    generation: 1,
                }
            }
        };
        let usage = &mut self.accounts.entry(owner).or_default().usage;
        usage.bytes += bytes;
        usage.resources += 1;
        Ok(handle)
    }

    fn entry(&self, owner: OwnerId, bits: u64, expected: ResourceKind) -> Result<&Entry> {
        let refuse = |fault| GpuError::BadHandle {
            expected,
            handle: bits,
            fault,
        };
        let handle = Handle::from_bits(bits);
        let slot = self
            .slots
            .get(handle.slot as usize)
            .ok_or(refuse(HandleFault::Unknown))?;
        if handle.generation == 0 || handle.generation > slot.generation {
            return Err(refuse(HandleFault::Unknown));
        }
        let entry = match &slot.entry {
            Some(entry) if handle.generation == slot.generation => entry,
            _ => return Err(refuse(HandleFault::Freed)),
        };
        if entry.owner != owner {
            return Err(refuse(HandleFault::Foreign));
        }
        if entry.resource.kind() != expected {
            return Err(refuse(HandleFault::WrongKind(entry.resource.kind())));
        }
        Ok(entry)
    }

    /// The resource behind `bits` if it is `owner`'s and of kind `expected`.
    pub(crate) fn get(
        &self,
        owner: OwnerId,
        bits: u64,
        expected: ResourceKind,
    ) -> Result<&Resource> {
        self.entry(owner, bits, expected).map(|e| &e.resource)
    }

    /// Frees one resource of `owner`, whatever its kind.
    pub fn free(&mut self, owner: OwnerId, bits: u64) -> Result<ResourceKind> {
        let handle = Handle::from_bits(bits);
        let kind = match self
            .slots
            .get(handle.slot as usize)
            .and_then(|s| s.entry.as_ref())
        {
            Some(entry) => entry.resource.kind(),
            None => ResourceKind::Buffer,
        };
        self.entry(owner, bits, kind)?;
        self.vacate(handle.slot);
        Ok(kind)
    }

    /// Frees everything `owner` holds (its module was removed or is being upgraded).
    pub fn release_all(&mut self, owner: OwnerId) -> Released {
        let slots: Vec<u32> = (0..self.slots.len())
            .filter(|&i| matches!(&self.slots[i].entry, Some(e) if e.owner == owner))
            .map(|i| i as u32)
            .collect();
        let mut released = Released::default();
        for slot in slots {
            if let Some(bytes) = self.vacate(slot) {
                released.bytes += bytes;
                released.resources += 1;
            }
        }
        if let Some(account) = self.accounts.get_mut(&owner) {
            account.usage = Usage::default();
            if account.budget.is_none() {
                self.accounts.remove(&owner);
            }
        }
        released
    }

    fn vacate(&mut self, slot: u32) -> Option<u64> {
        let s = &mut self.slots[slot as usize];
        let entry = s.entry.take()?;
        entry.resource.destroy();
        if let Some(account) = self.accounts.get_mut(&entry.owner) {
            account.usage.bytes -= entry.bytes;
            account.usage.resources -= 1;
        }
        if s.generation < u32::MAX {
            s.generation += 1;
            self.free.push(slot);
        }
        Some(entry.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The table's bookkeeping is independent of the device; the tests under `tests/` exercise it
    // with real wgpu objects. Here: the handle encoding alone.
    #[test]
    fn handle_bits_round_trip_and_zero_is_never_live() {
        let h = Handle {
            slot: 7,
            generation: 3,
        };
        assert_eq!(Handle::from_bits(h.to_bits()), h);
        assert_eq!(h.to_bits(), (3 << 32) | 7);
        let table = ResourceTable::new(Budget::default());
        let err = table
            .get(OwnerId(1), 0, ResourceKind::Buffer)
            .expect_err("handle 0 is never live");
        assert!(matches!(
            err,
            GpuError::BadHandle {
                fault: HandleFault::Unknown,
                ..
            }
        ));
    }
}

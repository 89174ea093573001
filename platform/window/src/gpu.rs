//! Instance, adapter and device creation, and the error scopes every module command runs in.

use std::sync::Arc;

use crate::error::{GpuError, Result};

/// The texture format of frames: what a pipeline that draws to the frame must target.
///
/// sRGB, so a module writes linear colours and a PNG of the frame shows what the window shows.
pub const FRAME_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;

/// An opened device: what every other part of the platform draws with.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

/// How the instance is created.
///
/// Backends and flags come from the environment first (`WGPU_BACKEND=vulkan|gl|...`,
/// `WGPU_DEBUG`, `WGPU_VALIDATION`, see wgpu's `InstanceDescriptor::with_env`), so tests and CI
/// can pick a backend without code changes.
pub fn instance_descriptor(
    display: Option<Box<dyn wgpu::wgt::WgpuHasDisplayHandle>>,
) -> wgpu::InstanceDescriptor {
    match display {
        Some(display) => wgpu::InstanceDescriptor::new_with_display_handle_from_env(display),
        None => wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
    }
}

impl Gpu {
    /// Opens a device without a surface, for off-screen rendering.
    pub fn headless() -> Result<Gpu> {
        let instance = wgpu::Instance::new(instance_descriptor(None));
        Gpu::open(instance, None)
    }

    /// Opens a device on `instance` that can present to `surface`, if given.
    pub fn open(instance: wgpu::Instance, surface: Option<&wgpu::Surface<'_>>) -> Result<Gpu> {
        let backends = wgpu::Backends::from_env().unwrap_or_default();
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            // The CPU adapters (llvmpipe, lavapipe) are what headless CI has; allow them.
            power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
            force_fallback_adapter: false,
            compatible_surface: surface,
            apply_limit_buckets: false,
        }))
        .map_err(|e| GpuError::NoAdapter {
            backends: format!("{backends:?}"),
            reason: e.to_string(),
        })?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("interstice"),
            // Everything the adapter can do: the host checks module requests against these
            // limits, so a module learns a device's bounds from the errors it gets.
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        // Every module command runs inside error scopes; anything that escapes them is the
        // host's own mistake, logged rather than wgpu's default of panicking the node.
        device.on_uncaptured_error(Arc::new(|error| {
            tracing::error!(%error, "uncaptured wgpu error");
        }));
        device.set_device_lost_callback(|reason, message| {
            tracing::error!(?reason, %message, "the GPU device was lost");
        });
        Ok(Gpu {
            instance,
            adapter,
            device,
            queue,
        })
    }

    /// "llvmpipe (Gl)" and the like, for logs and reports.
    pub fn describe(&self) -> String {
        let info = self.adapter.get_info();
        format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes, so whatever wgpu
    /// objects to becomes this call's error with wgpu's message, never a panic or a log line.
    pub fn scoped<T>(&self, during: &str, f: impl FnOnce() -> T) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        // Popped innermost first; the futures resolve at once on native backends.
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
            pollster::block_on(internal.pop()),
        ];
        match errors.into_iter().flatten().next() {
            None => Ok(value),
            Some(wgpu::Error::Validation { description, .. }) => Err(GpuError::Validation {
                during: during.to_string(),
                message: explain(&description),
            }),
            Some(wgpu::Error::OutOfMemory { .. }) => Err(GpuError::OutOfMemory {
                during: during.to_string(),
            }),
            Some(wgpu::Error::Internal { description, .. }) => Err(GpuError::Internal {
                during: during.to_string(),
                message: explain(&description),
            }),
        }
    }
}

/// wgpu's description on one line: "Validation Error / Caused by: / In X / In Y / why" becomes
/// "In X: In Y: why". A source diagram (WGSL errors) follows on its own lines, as wgpu drew it.
fn explain(description: &str) -> String {
    let mut lines = description
        .lines()
        .filter(|l| {
            !matches!(
                l.trim(),
                "" | "Caused by:" | "Validation Error" | "Internal error"
            )
        })
        .peekable();
    let mut context = Vec::new();
    while let Some(line) = lines.next_if(|l| !l.contains('│') && !l.contains('┌')) {
        context.push(line.trim());
    }
    let diagram: Vec<&str> = lines.collect();
    let mut message = context.join(": ");
    if message.is_empty() {
        message = description.trim().to_owned();
    }
    if !diagram.is_empty() {
        message.push('\n');
        message.push_str(&diagram.join("\n"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn wgpu_messages_become_one_line_with_their_diagram_kept() {
        let draw = "Validation Error\n\nCaused by:\n  In a CommandEncoder, label = 'f'\n    In a draw command, kind: Draw\n      expects a BindGroup at index 0\n";
        assert_eq!(
            explain(draw),
            "In a CommandEncoder, label = 'f': In a draw command, kind: Draw: expects a BindGroup at index 0"
        );
        let wgsl = "Validation Error\n\nCaused by:\n  In Device::create_shader_module\n\nShader parsing error: expected identifier\n  ┌─ wgsl:1:11\n  │\n1 │ fn broken(\n  │           ^ here\n";
        assert_eq!(
            explain(wgsl),
            "In Device::create_shader_module: Shader parsing error: expected identifier\n  ┌─ wgsl:1:11\n  │\n1 │ fn broken(\n  │           ^ here"
        );
        assert_eq!(explain("Validation Error"), "Validation Error");
    }
}

//! Integration tests of the Gpu and Input platform: one binary, a module per topic.
//!
//! GPU tests need an adapter. On a machine without a GPU, Mesa provides one on the CPU:
//! `apt-get install -y mesa-vulkan-drivers libvulkan1` (Vulkan/lavapipe) or the GL/llvmpipe
//! packages; pick one with `WGPU_BACKEND=vulkan` or `WGPU_BACKEND=gl`. A test that finds no
//! adapter fails and says what to install, unless `INTERSTICE_NO_GPU=1` declares that this
//! machine has no GPU stack: then GPU tests print that they did not run and pass.

mod common;
mod hostile;
mod input;
mod lane;
mod node_common;
mod node_hostile;
mod node_input;
mod node_render;
mod node_wire;
mod release;
mod render;
mod textures;

//! The platform authorities this build carries (cargo features), for the nodes it opens.
//!
//! `window` (on by default): the Gpu and Input authorities of `interstice-window`. A node
//! started with `node start` renders a Gpu module off-screen, on a thread that starts when
//! such a module is published (nothing of the GPU is opened before); `example graphics` opens
//! a window instead when there is a display (`commands/graphics.rs`).

use std::sync::Arc;

use interstice_runtime::authority::AuthorityProvider;

/// The platforms a node gets.
#[derive(Clone, Default)]
pub struct Platforms {
    #[cfg(feature = "window")]
    pub window: Option<interstice_window::WindowPlatform>,
}

impl Platforms {
    /// What `node start` serves with: every platform of this build, opened on demand.
    pub fn serving() -> Self {
        Platforms {
            #[cfg(feature = "window")]
            window: Some(interstice_window::WindowPlatform::headless_in_background(
                interstice_window::PlatformConfig::default(),
                interstice_window::HeadlessConfig::default(),
            )),
        }
    }

    /// Their authorities, for `NodeConfig::authorities`.
    pub fn authorities(&self) -> Vec<Arc<dyn AuthorityProvider>> {
        #[allow(unused_mut)]
        let mut authorities = Vec::new();
        #[cfg(feature = "window")]
        if let Some(window) = &self.window {
            authorities.extend(window.authorities());
        }
        authorities
    }
}

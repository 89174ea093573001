//! One integration-test binary: a module per topic, shared helpers in `support`.

mod capture;
#[cfg(all(feature = "cpal", target_os = "linux"))]
mod device;
mod hostile;
#[cfg(feature = "authority")]
mod node;
mod output;
mod support;
mod threads;

//! The Audio authority in a real node: the real `modules/audio` wasm and hostile hand-written
//! modules, playing through a virtual device whose clock is the test.

mod capture;
mod hostile;
mod tone;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use interstice_abi::Value;
use interstice_audio::{AudioAuthority, AudioConfig, StreamFormat, VirtualBackend, VirtualDevice};
use interstice_runtime::{Node, NodeConfig};
use interstice_store::Readable;

use crate::support::stereo_f32;

/// How long a test waits for the node before it fails instead of hanging. Not a measure:
/// on a healthy node everything it waits for happens within milliseconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// `modules/audio`, built once per test run.
pub fn audio_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| interstice_build::workspace_module("audio"))
}

/// A node with the Audio authority on a virtual device.
pub struct Rig {
    pub node: Arc<Node>,
    pub audio: AudioAuthority,
    devices: std::sync::mpsc::Receiver<VirtualDevice>,
    pub device: Option<VirtualDevice>,
}

pub struct RigConfig<'a> {
    pub audio: AudioConfig,
    pub period: u32,
    pub input: Option<StreamFormat>,
    pub workers: usize,
    pub data_dir: Option<&'a Path>,
    pub fuel: Option<u64>,
}

impl Default for RigConfig<'_> {
    fn default() -> Self {
        RigConfig {
            audio: AudioConfig::default().block_frames(512).target_blocks(4),
            period: 256,
            input: None,
            workers: 2,
            data_dir: None,
            fuel: None,
        }
    }
}

impl Rig {
    pub fn new(config: RigConfig<'_>) -> Rig {
        let (backend, devices) = VirtualBackend::new(stereo_f32(), config.input, config.period);
        let audio = AudioAuthority::new(backend, config.audio).expect("a valid configuration");
        let mut node_config = NodeConfig {
            authorities: vec![Arc::new(audio.clone())],
            workers: config.workers,
            data_dir: config.data_dir.map(Path::to_path_buf),
            ..NodeConfig::default()
        };
        if let Some(fuel) = config.fuel {
            node_config.limits.fuel_per_call = fuel;
        }
        let node = Node::open(node_config).expect("the node opens");
        let mut rig = Rig {
            node,
            audio,
            devices,
            device: None,
        };
        rig.take_device();
        rig
    }

    /// Takes the device the authority opened since the last call, if it opened one.
    pub fn take_device(&mut self) {
        if let Ok(device) = self.devices.try_recv() {
            self.device = Some(device);
        }
    }

    /// Installs `wasm` and takes the device its attachment opened.
    pub fn install(&mut self, wasm: &[u8]) {
        self.node.install(wasm).expect("the module installs");
        self.take_device();
        assert!(self.device.is_some(), "the authority opened no device");
    }

    fn device(&mut self) -> &mut VirtualDevice {
        self.device.as_mut().expect("an open device")
    }

    /// Plays `periods` device periods, each once the ring holds a whole period: the device
    /// never outruns the node, so an underrun here is the authority's fault, and a slow
    /// machine slows the test rather than failing it.
    pub fn play_gated(&mut self, periods: usize) -> Vec<f32> {
        let stats = self.audio.engine_stats().expect("the device is open");
        let mut out = Vec::new();
        for _ in 0..periods {
            let period = u64::from(self.device().period_frames());
            let deadline = Instant::now() + PATIENCE;
            while stats.snapshot().output.ring_fill_frames < period {
                assert!(
                    Instant::now() < deadline,
                    "the node never filled the ring: {:?} {:?}",
                    stats.snapshot(),
                    self.audio.hook_stats()
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            out.extend_from_slice(self.device().tick());
        }
        out
    }

    /// Plays `periods` periods at once, whatever the ring holds: a device that does not wait.
    pub fn play_now(&mut self, periods: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for _ in 0..periods {
            out.extend_from_slice(self.device().tick());
        }
        out
    }

    /// Calls `module.reducer` with `args`; the outcome's failure reason, if it failed.
    pub fn call(&self, module: &str, reducer: &str, args: &[Value]) -> Result<(), String> {
        match self
            .node
            .call_reducer_values(module, reducer, args)
            .expect("the call reaches the node")
        {
            interstice_runtime::Outcome::Committed { .. } => Ok(()),
            interstice_runtime::Outcome::Failed { reason, .. } => Err(reason.to_string()),
        }
    }

    /// Every row of table `name` (`module.table`), in primary-key order.
    pub fn rows(&self, name: &str) -> Vec<Vec<Value>> {
        let store = self.node.store();
        let id = store.table_id(name).expect("the table exists");
        store
            .read()
            .scan(id)
            .expect("the table scans")
            .map(|row| row.to_vec())
            .collect()
    }
}

/// Waits until `ready` holds, failing after [`PATIENCE`] with `what`.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

//! One module per group of commands; behaviour lives here and in the runtime, not in `main`.

pub mod bench;
pub mod bindings;
pub mod completions;
pub mod example;
#[cfg(feature = "window")]
pub mod graphics;
pub mod init;
pub mod module;
pub mod node;
pub mod publish;
pub mod schema;
pub mod simulation;
pub mod update;

use interstice_runtime::net::{Client, ClientConfig};

use crate::error::{CliError, Result};
use crate::home::{Home, NodeEntry};

/// Connects to a registered node with its admin token when this machine has it, checking that
/// the node at the address is the registered one.
pub async fn connect(home: &Home, node: &NodeEntry) -> Result<Client> {
    let config = ClientConfig {
        admin_token: home.admin_token(node)?,
        expect_node: (!node.id.is_empty()).then(|| node.id.clone()),
        ..ClientConfig::default()
    };
    Client::connect(&node.address, config)
        .await
        .map_err(|e| CliError::net(node, e))
}

//! The CLI's data directory: the node registry (`nodes.toml`) and each node's folder
//! (`nodes/<id>/` with `data/` and `admin_token`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result, kind};

/// `INTERSTICE_HOME`, else the OS data directory.
pub fn home_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("INTERSTICE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "interstice")
        .map(|dirs| dirs.data_dir().to_owned())
        .ok_or_else(|| {
            CliError::new("cannot find the OS data directory (no home directory?)")
                .hint("set INTERSTICE_HOME to a folder the CLI may use")
        })
}

/// One node the CLI knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    /// The node's id (UUID v4). Empty for a remote node not reached yet.
    #[serde(default)]
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// Created here (`node create`): its data and admin token live under the home.
    pub local: bool,
    /// Its folder relative to the home, when not `nodes/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default, rename = "node")]
    nodes: Vec<NodeEntry>,
}

/// The home folder and its registry.
pub struct Home {
    pub dir: PathBuf,
    pub nodes: Vec<NodeEntry>,
}

impl Home {
    pub fn open() -> Result<Home> {
        let dir = home_dir()?;
        let path = dir.join("nodes.toml");
        let nodes = match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str::<RegistryFile>(&text)
                    .map_err(|e| {
                        CliError::new(format!(
                            "{} is not a valid node registry: {e}",
                            path.display()
                        ))
                        .hint("fix the file by hand, or move it away to start over")
                    })?
                    .nodes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(CliError::io(format!("cannot read {}", path.display()), e)),
        };
        Ok(Home { dir, nodes })
    }

    pub fn save(&self) -> Result<()> {
        create_private_dir(&self.dir)
            .map_err(|e| CliError::io(format!("cannot create {}", self.dir.display()), e))?;
        let text = toml::to_string_pretty(&RegistryFile {
            nodes: self.nodes.clone(),
        })
        .map_err(|e| CliError::new(format!("cannot write the node registry: {e}")))?;
        let path = self.dir.join("nodes.toml");
        let tmp = self.dir.join("nodes.toml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))
    }

    /// A node by name, else by id, else by the start of its id when only one id starts so.
    pub fn find(&self, name_or_id: &str) -> Result<&NodeEntry> {
        self.position(name_or_id).map(|i| &self.nodes[i])
    }

    pub fn position(&self, name_or_id: &str) -> Result<usize> {
        if let Some(i) = self.nodes.iter().position(|n| n.name == name_or_id) {
            return Ok(i);
        }
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| !n.id.is_empty() && n.id == name_or_id)
        {
            return Ok(i);
        }
        let prefixed: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !name_or_id.is_empty() && self.nodes[i].id.starts_with(name_or_id))
            .collect();
        match prefixed.as_slice() {
            [i] => return Ok(*i),
            [] => {}
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|&i| format!("{} ({})", self.nodes[i].name, self.nodes[i].id))
                    .collect();
                return Err(CliError::usage(format!(
                    "`{name_or_id}` starts the ids of several nodes: {}",
                    names.join(", ")
                ))
                .hint("give more of the id, or the node's name"));
            }
        }
        let known = if self.nodes.is_empty() {
            "no nodes yet".to_owned()
        } else {
            format!(
                "known: {}",
                self.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(
            CliError::new(format!("no node named `{name_or_id}` ({known})"))
                .kind(kind::NO_SUCH_NODE)
                .hint(
                    "`interstice node create <name> <port>` makes a local node, `interstice node add <name> <address>` registers a remote one",
                ),
        )
    }

    pub fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() || name.contains(',') || name.chars().any(char::is_whitespace) {
            return Err(
                CliError::usage(format!("`{name}` is not a valid node name"))
                    .hint("use letters, digits, `-` and `_`; commas separate nodes in `publish`"),
            );
        }
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(
                CliError::new(format!("a node named `{name}` already exists"))
                    .hint("pick another name, or `interstice node remove` the old one"),
            );
        }
        Ok(())
    }

    /// The cargo target directory that module builds share (`publish`), so that a new crate
    /// finds the SDK and its dependencies already built.
    pub fn build_cache(&self) -> PathBuf {
        self.dir.join("build-cache")
    }

    /// The node's folder.
    pub fn node_dir(&self, node: &NodeEntry) -> PathBuf {
        match &node.dir {
            Some(dir) => self.dir.join(dir),
            None => self.dir.join("nodes").join(&node.id),
        }
    }

    /// A node as `--json` shows it: name, id (`null` until reached), address, kind, and for a
    /// local node its data folder and token file.
    pub fn node_json(&self, node: &NodeEntry) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "name": node.name,
            "id": crate::output::or_null(&node.id),
            "address": node.address,
            "kind": if node.local { "local" } else { "remote" },
        });
        if node.local {
            let dir = self.node_dir(node);
            doc["data"] = dir.join("data").display().to_string().into();
            doc["token"] = dir.join("admin_token").display().to_string().into();
        }
        doc
    }

    /// The admin token of a node: `INTERSTICE_ADMIN_TOKEN`, else the local node's token file.
    pub fn admin_token(&self, node: &NodeEntry) -> Result<Option<String>> {
        if let Some(token) = std::env::var("INTERSTICE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(token));
        }
        let path = self.node_dir(node).join("admin_token");
        match std::fs::read_to_string(&path) {
            Ok(token) => Ok(Some(token.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::io(format!("cannot read {}", path.display()), e)),
        }
    }
}

/// Creates `dir` and its missing parents, owner-only (0700) on Unix: node data, tokens and
/// the registry are nobody else's business. An existing directory is made owner-only too.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `dir/admin_token` with a fresh random token (32 bytes, hex), owner-only on Unix,
/// unless it exists. Returns the token.
pub fn ensure_admin_token(dir: &Path) -> Result<String> {
    let path = dir.join("admin_token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_owned());
    }
    create_private_dir(dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::new(format!("cannot get random bytes for the admin token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&path)
        .and_then(|mut f| f.write_all(token.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: &str) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            id: id.into(),
            address: "127.0.0.1:1".into(),
            local: true,
            dir: None,
        }
    }

    #[test]
    fn nodes_are_found_by_name_id_or_unique_id_prefix() {
        let home = Home {
            dir: PathBuf::from("/h"),
            nodes: vec![node("a", "1234-x"), node("b", "1299-y"), node("c", "")],
        };
        assert_eq!(home.find("b").unwrap().name, "b");
        assert_eq!(home.find("1234-x").unwrap().name, "a");
        assert_eq!(home.find("123").unwrap().name, "a");
        let err = home.find("12").unwrap_err();
        assert!(err.what.contains("several nodes"), "{err}");
        assert_eq!(err.code, crate::error::code::USAGE);
        let err = home.find("9").unwrap_err();
        assert_eq!(err.kind, kind::NO_SUCH_NODE);
        // A node with no id yet matches no prefix, not even the empty one.
        assert!(home.find("").is_err());
    }
}

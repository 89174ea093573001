//! The `Module` authority: the module holding it decides who may publish and remove modules
//! when the client is not the node's admin, through its `authorize` query.

use interstice_abi::{Authority as Kind, MANAGER_QUERY, Value};

use super::AuthorityProvider;
use crate::node::NodeInner;

/// The built-in `Module` authority.
pub struct ModuleManager;

impl AuthorityProvider for ModuleManager {
    fn kind(&self) -> Kind {
        Kind::Module
    }
}

impl ModuleManager {
    /// Asks module `manager` whether a client may `action` (`"publish"`, `"remove"`) `module`.
    /// A query: deterministic and read-only, so a policy cannot change state as it decides.
    pub(crate) fn authorize(
        node: &NodeInner,
        manager: &str,
        action: &str,
        module: &str,
        admin: bool,
    ) -> Result<(), String> {
        let args = [
            Value::String(action.to_owned()),
            Value::String(module.to_owned()),
            Value::Bool(admin),
        ];
        match node.call_query(manager, MANAGER_QUERY, &args) {
            Ok(Value::Bool(true)) => Ok(()),
            Ok(_) => Err(format!(
                "module `{manager}`, this node's module manager, does not allow you to {action} `{module}`"
            )),
            Err(e) => Err(format!(
                "module `{manager}`, this node's module manager, failed to decide: {e}"
            )),
        }
    }
}

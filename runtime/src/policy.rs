//! Who may publish, remove, call and subscribe: one policy, used by the network server and by
//! embedders alike.
//!
//! - The node's admin (a client that presented the admin token) may do anything.
//! - Anyone else may publish and remove modules only if a module holding the `Module`
//!   authority allows it (its `authorize` query decides), or, when no module holds it, if the
//!   node allows anonymous publishing.
//! - `Private` modules may be called, queried and subscribed to only by the admin (and by
//!   other modules of the node, through nested calls); only `#[table(public)]` tables of a
//!   module can be subscribed to by others, and only they appear in its schema for them.

use interstice_abi::{Authority, ModuleSchema, Visibility};

use crate::authority::ModuleManager;
use crate::error::NodeError;
use crate::node::{NodeInner, Published};

/// The node's rules for clients that are not its admin.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Lets clients without the admin token publish and remove modules when no module holds
    /// the `Module` authority. By default, `false`.
    pub allow_anonymous_publish: bool,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A client that presented the node's admin token (or the embedder itself).
    Admin,
    /// Anyone else: a client without the token, or another node.
    Anonymous,
}

impl Principal {
    pub fn is_admin(self) -> bool {
        self == Principal::Admin
    }
}

impl NodeInner {
    /// [`publish`](NodeInner::publish) on behalf of `who`.
    pub(crate) fn publish_as(&self, who: Principal, wasm: &[u8]) -> Result<Published, NodeError> {
        if who.is_admin() {
            return self.publish(wasm);
        }
        match self.holder(Authority::Module) {
            // The module manager decides, once it knows which module this is.
            Some(manager) => self.publish_if(wasm, |schema| {
                ModuleManager::authorize(self, &manager, "publish", &schema.name, false)
            }),
            None => {
                self.anonymous_may("publish")?;
                self.publish(wasm)
            }
        }
    }

    /// [`remove`](NodeInner::remove) on behalf of `who`.
    pub(crate) fn remove_as(&self, who: Principal, module: &str) -> Result<(), NodeError> {
        if !who.is_admin() {
            match self.holder(Authority::Module) {
                Some(manager) => {
                    ModuleManager::authorize(self, &manager, "remove", module, false)
                        .map_err(NodeError::Unauthorized)?;
                }
                None => self.anonymous_may("remove modules")?,
            }
        }
        self.remove(module)
    }

    /// Whether `who` may call, query or subscribe to `module`; returns its schema.
    pub(crate) fn check_use(
        &self,
        who: Principal,
        module: &str,
    ) -> Result<ModuleSchema, NodeError> {
        let schema = self.module(module)?.schema().clone();
        may_use(who, &schema)?;
        Ok(schema)
    }

    /// Whether `who` may subscribe to `module.table`.
    pub(crate) fn check_subscription(
        &self,
        who: Principal,
        module: &str,
        table: &str,
    ) -> Result<(), NodeError> {
        let schema = self.check_use(who, module)?;
        let visible = schema
            .table(table)
            .is_some_and(|t| t.visibility == Visibility::Public || who.is_admin());
        if !visible {
            return Err(NodeError::NotSubscribable {
                module: module.to_owned(),
                table: table.to_owned(),
            });
        }
        Ok(())
    }

    /// The schemas `who` may see: everything for the admin; public modules and their public
    /// tables for anyone else.
    pub(crate) fn schemas_for(&self, who: Principal) -> Vec<ModuleSchema> {
        let mut schemas = self.schemas();
        if !who.is_admin() {
            schemas.retain(|s| s.visibility == Visibility::Public);
            for schema in &mut schemas {
                schema.tables.retain(|t| t.visibility == Visibility::Public);
            }
        }
        schemas
    }

    /// The module holding `authority`, if one does.
    pub(crate) fn holder(&self, authority: Authority) -> Option<String> {
        self.schemas()
            .into_iter()
            .find(|s| s.authorities.contains(&authority))
            .map(|s| s.name)
    }

    fn anonymous_may(&self, what: &str) -> Result<(), NodeError> {
        if self.policy().allow_anonymous_publish {
            return Ok(());
        }
        Err(NodeError::Unauthorized(format!(
            "only the node's admin may {what}: connect with its admin token, or start the node with --allow-anonymous-publish"
        )))
    }
}

/// Whether `who` may call, query or subscribe to the module of `schema`.
pub(crate) fn may_use(who: Principal, schema: &ModuleSchema) -> Result<(), NodeError> {
    if schema.visibility == Visibility::Private && !who.is_admin() {
        return Err(NodeError::Unauthorized(format!(
            "module `{}` is private: only the node's admin may call it",
            schema.name
        )));
    }
    Ok(())
}

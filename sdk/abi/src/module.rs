//! What a module says about itself: the schema exported through one function.
//!
//! The schema's types and `validate`, which checks every part of them against the others
//! (names, access, events, platform hooks, partitions), side by side; the events and
//! authorities a schema names, and their text forms, are in `event.rs`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::event::{Authority, Event, ParseError};
use crate::{Field, SchemaError, TableSchema, Type, TypeDef, TypeError, TypeRegistry, Visibility};

/// A module's full self-description: what the CLI prints, what bindings are generated from, and
/// what the node validates on load and publish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSchema {
    /// Must equal the host's [`ABI_VERSION`](crate::ABI_VERSION).
    pub abi_version: u32,
    /// The Cargo package name.
    pub name: String,
    /// The Cargo package version.
    pub version: String,
    pub visibility: Visibility,
    pub authorities: Vec<Authority>,
    /// User types, including one struct per table (the row type).
    pub types: Vec<TypeDef>,
    pub tables: Vec<TableSchema>,
    pub reducers: Vec<ReducerSchema>,
    pub queries: Vec<QuerySchema>,
    /// Other nodes this module talks to (its node bindings, `src/bindings/node_<name>.toml`):
    /// their reducers it calls and the tables it subscribes to, as `<node>.<module>.<...>`.
    pub nodes: Vec<NodeDependency>,
}

/// Another node a module depends on, by the name its bindings give it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeDependency {
    /// The name used in `<node>.<module>.<table>.<event>` and `calls(<node>.<module>.<reducer>)`.
    pub name: String,
    /// Where the node listens (`host:port`); a node may be told another one at start.
    pub address: String,
}

/// What `interstice bindings add node` writes to `src/bindings/node_<name>.toml`: a node's
/// address and the public schemas of its modules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBinding {
    pub name: String,
    pub address: String,
    /// The node's id when the binding was made; informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default)]
    pub modules: Vec<ModuleSchema>,
}

/// A reducer: a deterministic transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerSchema {
    pub name: String,
    /// The arguments after the context.
    pub args: Vec<Field>,
    /// What it may touch. `None`: every table of its own module, read and write, and no calls.
    pub access: Option<Access>,
    /// The event it is subscribed to; a subscribed reducer cannot be called from outside.
    pub on: Option<Event>,
}

/// A query: read-only, returns a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySchema {
    pub name: String,
    pub args: Vec<Field>,
    pub returns: Type,
    /// Tables it reads and queries it calls. `None`: every table of its own module.
    pub access: Option<Access>,
}

/// Declared access, as written in `#[reducer(reads(..), writes(..), calls(..))]`.
///
/// Tables of the module itself are named plainly (`accounts`); tables of another module on the
/// same node as `module.table`. Calls name `module.reducer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    pub calls: Vec<String>,
}

/// The query a module holding [`Authority::Module`] answers for every publish and remove by a
/// client without the admin token: `authorize(action, module, admin) -> bool`, where `action`
/// is `"publish"` or `"remove"`.
pub const MANAGER_QUERY: &str = "authorize";

/// Splits a remote call target `node.module.reducer` into the node and `module.reducer`;
/// `None` for local names (`reducer`, `module.reducer`).
pub fn remote_target(name: &str) -> Option<(&str, &str)> {
    let (node, rest) = name.split_once('.')?;
    rest.contains('.').then_some((node, rest))
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks a module's name: 1 to 64 ASCII letters, digits, `_` or `-`, starting with a letter
/// or `_` (a Cargo package name). The host builds file names from it
/// (`modules/<name>.wasm`), so anything else — a path, `..`, a NUL — is refused wherever a
/// module name enters: the schema, publish, remove, bindings and the CLI.
pub fn check_module_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let reason = match chars.next() {
        None => "it is empty",
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => "it must start with a letter or `_`",
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
            "it may only contain ASCII letters, digits, `_` and `-`"
        }
        _ if name.len() > 64 => "it is longer than 64 characters",
        _ => return Ok(()),
    };
    Err(format!(
        "`{}` is not a valid module name: {reason}",
        name.escape_debug()
    ))
}

/// A module schema that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    #[error(
        "module `{module}` was built for ABI version {found}, this node speaks version {expected}; rebuild it against a matching interstice-sdk"
    )]
    AbiVersion {
        module: String,
        found: u32,
        expected: u32,
    },
    #[error("{0}")]
    BadModuleName(String),
    #[error("`{module}.{function}` declares `{declared}`: {reason}")]
    BadPartition {
        module: String,
        function: String,
        declared: String,
        reason: String,
    },
    #[error("module `{module}`: function name `{name}` is not valid: {reason}")]
    BadFunctionName {
        module: String,
        name: String,
        reason: &'static str,
    },
    #[error("module `{module}` declares `{name}` twice")]
    Duplicate { module: String, name: String },
    #[error("module `{module}`: {source}")]
    Table { module: String, source: SchemaError },
    #[error("module `{module}`: {source}")]
    Type { module: String, source: TypeError },
    #[error(
        "reducer `{module}.{reducer}` declares access to unknown table `{table}`; declare tables of this module by name and others as `module.table`"
    )]
    UnknownTable {
        module: String,
        reducer: String,
        table: String,
    },
    #[error("reducer `{module}.{reducer}` subscribed to `{event}` must be written `{expected}`")]
    SubscriptionSignature {
        module: String,
        reducer: String,
        event: String,
        expected: String,
    },
    #[error(
        "reducer `{module}.{reducer}` runs on `{event}` events, which need the {authority:?} authority; add `authorities: [{authority:?}]` to `interstice_module!`"
    )]
    HookNeedsAuthority {
        module: String,
        reducer: String,
        event: String,
        authority: Authority,
    },
    #[error(
        "module `{module}` defines `{name}` differently from the platform's `{name}`; use the SDK's type (`interstice_sdk::platform::{name}`)"
    )]
    PlatformType { module: String, name: String },
    #[error("the module's schema is malformed ({0}); rebuild it with interstice-sdk")]
    Malformed(String),
    #[error("module `{module}` claims authority {authority:?} twice")]
    DuplicateAuthority {
        module: String,
        authority: Authority,
    },
    #[error(
        "`{module}.{reducer}` uses node `{node}` (in `{name}`), which the module has no binding for; run `interstice bindings add node {node}` in the module's folder"
    )]
    UnknownNode {
        module: String,
        reducer: String,
        node: String,
        name: String,
    },
    #[error(
        "module `{module}` claims the Module authority, so it decides who may publish and remove modules: define `#[query] fn authorize(ctx: QueryContext, action: String, module: String, admin: bool) -> bool`"
    )]
    NoAuthorize { module: String },
    #[error("module `{module}` has a bad node binding `{name}`: {reason}")]
    BadNode {
        module: String,
        name: String,
        reason: String,
    },
}

impl ModuleSchema {
    /// The bytes [`EXPORT_SCHEMA`](crate::host::EXPORT_SCHEMA) hands over (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a schema from untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModuleError> {
        postcard::from_bytes(bytes).map_err(|e| ModuleError::Malformed(e.to_string()))
    }

    /// The registry of this module's user types.
    pub fn registry(&self) -> Result<TypeRegistry, ModuleError> {
        TypeRegistry::new(self.types.iter().cloned()).map_err(|source| ModuleError::Type {
            module: self.name.clone(),
            source,
        })
    }

    /// What other nodes may see: only public tables, and only reducers that can be called
    /// (subscribed reducers are the module's own business). Bindings are made from this view.
    pub fn to_public(&self) -> ModuleSchema {
        let mut public = self.clone();
        public.tables.retain(|t| t.visibility == Visibility::Public);
        public.reducers.retain(|r| r.on.is_none());
        public
    }

    /// Finds a node dependency by name.
    pub fn node(&self, name: &str) -> Option<&NodeDependency> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Finds a table by name.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Checks everything the host relies on, short of things that need other modules
    /// (cross-module tables are checked when the node links modules).
    pub fn validate(&self, host_abi_version: u32) -> Result<TypeRegistry, ModuleError> {
        let module = || self.name.clone();
        if self.abi_version != host_abi_version {
            return Err(ModuleError::AbiVersion {
                module: module(),
                found: self.abi_version,
                expected: host_abi_version,
            });
        }
        check_module_name(&self.name).map_err(ModuleError::BadModuleName)?;
        for name in self
            .reducers
            .iter()
            .map(|r| &r.name)
            .chain(self.queries.iter().map(|q| &q.name))
        {
            crate::schema::check_identifier(name).map_err(|reason| {
                ModuleError::BadFunctionName {
                    module: module(),
                    name: name.escape_debug().to_string(),
                    reason,
                }
            })?;
        }
        let registry = self.registry()?;
        let mut names = HashSet::new();
        for table in &self.tables {
            table
                .validate(&registry)
                .map_err(|source| ModuleError::Table {
                    module: module(),
                    source,
                })?;
            if !names.insert(("table", table.name.as_str())) {
                return Err(ModuleError::Duplicate {
                    module: module(),
                    name: table.name.clone(),
                });
            }
        }
        let mut nodes = HashSet::new();
        for node in &self.nodes {
            let bad = |reason: &str| ModuleError::BadNode {
                module: module(),
                name: node.name.clone(),
                reason: reason.to_owned(),
            };
            if !is_identifier(&node.name) {
                return Err(bad("a node name is letters, digits, `_` and `-`"));
            }
            if node.address.trim().is_empty() {
                return Err(bad("its address is empty"));
            }
            if !nodes.insert(node.name.as_str()) {
                return Err(bad("it is declared twice"));
            }
        }
        let mut authorities = HashSet::new();
        for authority in &self.authorities {
            if !authorities.insert(authority) {
                return Err(ModuleError::DuplicateAuthority {
                    module: module(),
                    authority: *authority,
                });
            }
        }
        if authorities.contains(&Authority::Module) {
            let authorize = self.queries.iter().find(|q| q.name == MANAGER_QUERY);
            let fits = authorize.is_some_and(|q| {
                q.returns == Type::Bool
                    && q.args
                        .iter()
                        .map(|a| &a.ty)
                        .eq([&Type::String, &Type::String, &Type::Bool])
            });
            if !fits {
                return Err(ModuleError::NoAuthorize { module: module() });
            }
        }
        for reducer in &self.reducers {
            if !names.insert(("function", reducer.name.as_str())) {
                return Err(ModuleError::Duplicate {
                    module: module(),
                    name: reducer.name.clone(),
                });
            }
            self.check_args(&reducer.args, &registry)?;
            if let Some(access) = &reducer.access {
                for call in &access.calls {
                    if let Some((node, _)) = remote_target(call)
                        && !nodes.contains(node)
                    {
                        return Err(ModuleError::UnknownNode {
                            module: module(),
                            reducer: reducer.name.clone(),
                            node: node.to_owned(),
                            name: call.clone(),
                        });
                    }
                }
                for declared in access.reads.iter().chain(&access.writes) {
                    self.check_declared_table(&reducer.name, &reducer.args, declared)?;
                }
            }
            if let Some(event) = &reducer.on {
                if let Event::Table {
                    node: Some(node), ..
                } = event
                    && !nodes.contains(node.as_str())
                {
                    return Err(ModuleError::UnknownNode {
                        module: module(),
                        reducer: reducer.name.clone(),
                        node: node.clone(),
                        name: event.to_string(),
                    });
                }
                self.check_subscription(reducer, event)?;
                self.check_platform_hook(reducer, event, &registry)?;
            }
        }
        for query in &self.queries {
            if !names.insert(("function", query.name.as_str())) {
                return Err(ModuleError::Duplicate {
                    module: module(),
                    name: query.name.clone(),
                });
            }
            self.check_args(&query.args, &registry)?;
            for declared in query.access.iter().flat_map(|a| &a.reads) {
                self.check_declared_table(&query.name, &query.args, declared)?;
            }
            registry
                .check_defined(&query.returns)
                .map_err(|source| ModuleError::Type {
                    module: module(),
                    source,
                })?;
        }
        Ok(registry)
    }

    fn check_args(&self, args: &[Field], registry: &TypeRegistry) -> Result<(), ModuleError> {
        args.iter().try_for_each(|arg| {
            registry
                .check_defined(&arg.ty)
                .map_err(|source| ModuleError::Type {
                    module: self.name.clone(),
                    source,
                })
        })
    }

    fn check_subscription(
        &self,
        reducer: &ReducerSchema,
        event: &Event,
    ) -> Result<(), ModuleError> {
        // The row type of a table of this module is the struct registered under the table's
        // columns; for other modules' tables the node checks it when linking.
        let (row, row_name) = match event {
            Event::Table {
                node: None,
                module,
                table,
                ..
            } if *module == self.name => {
                let schema = self.table(table).ok_or_else(|| ModuleError::UnknownTable {
                    module: self.name.clone(),
                    reducer: reducer.name.clone(),
                    table: table.clone(),
                })?;
                let row = self.row_type_of(schema);
                let name = row.as_ref().map(|t| t.to_string()).unwrap_or_default();
                (row, name)
            }
            Event::Table { .. } => return Ok(()),
            _ => (None, String::new()),
        };
        let expected = event.expected_args(row.as_ref());
        let found: Vec<Type> = reducer.args.iter().map(|a| a.ty.clone()).collect();
        if expected.as_ref() != Some(&found) {
            return Err(ModuleError::SubscriptionSignature {
                module: self.name.clone(),
                reducer: reducer.name.clone(),
                event: event.to_string(),
                expected: event.signature_hint(&row_name),
            });
        }
        Ok(())
    }

    /// A declared table (`table`, `module.table`, `table[partition expression]`) exists when it
    /// is this module's, and a declared partition names a partitioned table and integer
    /// arguments of the function.
    fn check_declared_table(
        &self,
        function: &str,
        args: &[Field],
        declared: &str,
    ) -> Result<(), ModuleError> {
        let bad = |reason: String| ModuleError::BadPartition {
            module: self.name.clone(),
            function: function.to_owned(),
            declared: declared.to_owned(),
            reason,
        };
        let table_ref: crate::partition::TableRef =
            declared.parse().map_err(|e: ParseError| bad(e.0))?;
        let own = !table_ref.table.contains('.');
        let schema = self.table(&table_ref.table);
        if own && schema.is_none() {
            return Err(ModuleError::UnknownTable {
                module: self.name.clone(),
                reducer: function.to_owned(),
                table: table_ref.table,
            });
        }
        let Some(parts) = &table_ref.parts else {
            return Ok(());
        };
        if let Some(schema) = schema
            && schema.partition_column().is_none()
        {
            return Err(bad(format!(
                "table `{}` is not partitioned; add `partition_by = <column>` to its #[table(..)]",
                table_ref.table
            )));
        }
        for used in parts.args() {
            match args.iter().find(|a| a.name == used) {
                Some(arg) if arg.ty.is_integer() => {}
                Some(arg) => {
                    return Err(bad(format!(
                        "argument `{used}` is {}, and partitions are numbered by integers",
                        arg.ty
                    )));
                }
                None => return Err(bad(format!("there is no argument `{used}`"))),
            }
        }
        Ok(())
    }

    /// A platform hook needs its authority, and its argument's definitions must be the
    /// platform's, so that host and guest agree on the bytes.
    fn check_platform_hook(
        &self,
        reducer: &ReducerSchema,
        event: &Event,
        registry: &TypeRegistry,
    ) -> Result<(), ModuleError> {
        let Some(authority) = event.authority() else {
            return Ok(());
        };
        if !self.authorities.contains(&authority) {
            return Err(ModuleError::HookNeedsAuthority {
                module: self.name.clone(),
                reducer: reducer.name.clone(),
                event: event.to_string(),
                authority,
            });
        }
        let Some(Type::Named(name)) = reducer.args.first().map(|a| &a.ty) else {
            return Ok(());
        };
        for def in crate::platform::definitions(name).unwrap_or_default() {
            if registry.get(def.name()).ok() != Some(&def) {
                return Err(ModuleError::PlatformType {
                    module: self.name.clone(),
                    name: def.name().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The named struct type whose fields are exactly the table's columns.
    pub fn row_type_of(&self, table: &TableSchema) -> Option<Type> {
        self.types.iter().find_map(|def| match def {
            TypeDef::Struct { name, fields }
                if fields.len() == table.columns.len()
                    && fields
                        .iter()
                        .zip(&table.columns)
                        .all(|(f, c)| f.name == c.name && f.ty == c.ty)
                    && name.to_lowercase() == table.name =>
            {
                Some(Type::Named(name.clone()))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ABI_VERSION, IndexKind};

    fn hello() -> ModuleSchema {
        let greetings = TableSchema::builder("greetings")
            .auto_inc_column("id", Type::U64)
            .column("name", Type::String)
            .primary_key("id")
            .index("name", IndexKind::Hash, false)
            .build()
            .unwrap();
        ModuleSchema {
            abi_version: ABI_VERSION,
            name: "hello".into(),
            version: "0.1.0".into(),
            visibility: Visibility::Public,
            authorities: vec![],
            types: vec![TypeDef::Struct {
                name: "Greetings".into(),
                fields: vec![
                    Field::new("id", Type::U64),
                    Field::new("name", Type::String),
                ],
            }],
            tables: vec![greetings],
            reducers: vec![
                ReducerSchema {
                    name: "hello".into(),
                    args: vec![Field::new("name", Type::String)],
                    access: Some(Access {
                        writes: vec!["greetings".into()],
                        ..Access::default()
                    }),
                    on: None,
                },
                ReducerSchema {
                    name: "on_greeting".into(),
                    args: vec![Field::new("row", Type::Named("Greetings".into()))],
                    access: None,
                    on: Some("hello.greetings.insert".parse().unwrap()),
                },
            ],
            queries: vec![],
            nodes: vec![],
        }
    }

    #[test]
    fn events_parse_and_print_back() {
        for s in [
            "init",
            "load",
            "connect",
            "disconnect",
            "hello.greetings.insert",
            "node1.hello.greetings.update",
        ] {
            assert_eq!(s.parse::<Event>().unwrap().to_string(), s);
        }
        let err = "hello.greetings.upsert".parse::<Event>().unwrap_err();
        assert!(err.0.contains("insert, update or delete"), "{err}");
        assert!("hello".parse::<Event>().is_err());
        assert!("a..insert".parse::<Event>().is_err());
    }

    #[test]
    fn a_valid_module_validates_and_round_trips() {
        let schema = hello();
        schema.validate(ABI_VERSION).unwrap();
        assert_eq!(
            ModuleSchema::from_bytes(&schema.to_bytes()).unwrap(),
            schema
        );
        assert!(matches!(
            ModuleSchema::from_bytes(&[0xff, 0xff, 0xff]),
            Err(ModuleError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_abi_version_is_refused_with_the_versions() {
        let err = hello().validate(ABI_VERSION + 1).unwrap_err();
        assert!(matches!(err, ModuleError::AbiVersion { .. }));
        assert!(err.to_string().contains("rebuild"), "{err}");
    }

    #[test]
    fn subscription_with_the_wrong_row_type_says_what_to_write() {
        let mut schema = hello();
        schema.reducers[1].args = vec![Field::new("row", Type::String)];
        let err = schema.validate(ABI_VERSION).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reducer `hello.on_greeting` subscribed to `hello.greetings.insert` must be written \
             `fn _(ctx: ReducerContext, row: Greetings)`"
        );
    }

    #[test]
    fn undeclared_tables_and_duplicates_are_refused() {
        let mut schema = hello();
        schema.reducers[0].access = Some(Access {
            reads: vec!["nope".into()],
            ..Access::default()
        });
        assert!(matches!(
            schema.validate(ABI_VERSION),
            Err(ModuleError::UnknownTable { .. })
        ));
        let mut schema = hello();
        schema.reducers.push(schema.reducers[0].clone());
        assert!(matches!(
            schema.validate(ABI_VERSION),
            Err(ModuleError::Duplicate { .. })
        ));
    }
}

//! `#[table]`: the row type, its `Table` impl and schema, the accessor trait, the typed handle
//! and the registration export.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Ident, ItemStruct, LitStr};

use crate::types::{check_generics, impl_struct};
use crate::util::{Errors, abi, export_attrs, private, register_ident};

#[derive(Default)]
struct Options {
    public: bool,
    /// The persistence keyword and where it was written.
    persistence: Option<(String, Span)>,
    name: Option<LitStr>,
    /// `partition_by = column`.
    partition_by: Option<Ident>,
}

fn parse_options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        let span = meta.path.span();
        if meta.path.is_ident("public") {
            options.public = true;
        } else if meta.path.is_ident("private") {
            options.public = false;
        } else if let Some(keyword) = ["logged", "stateful", "ephemeral"]
            .into_iter()
            .find(|k| meta.path.is_ident(k))
        {
            if let Some((first, _)) = &options.persistence {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "a table has one persistence mode: choose `{first}` or `{keyword}`, \
                         not both"
                    ),
                ));
            }
            options.persistence = Some((keyword.to_owned(), span));
        } else if meta.path.is_ident("name") {
            options.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("partition_by") {
            options.partition_by = Some(meta.value()?.parse()?);
        } else {
            return Err(meta.error(
                "unknown table option; expected `public`, `stateful`, `ephemeral`, `logged`, \
                 `name = \"...\"` or `partition_by = <column>`",
            ));
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }
    options
}

#[derive(Clone, Copy, PartialEq)]
enum IndexKind {
    Hash,
    BTree,
    /// The column of `#[table(partition_by = ..)]`: ordered like a btree.
    Partition,
}

struct Index {
    kind: IndexKind,
    unique: bool,
}

struct Column {
    ident: Ident,
    ty: syn::Type,
    primary_key: bool,
    /// Where `auto_inc` was written, if it was.
    auto_inc: Option<Span>,
    index: Option<Index>,
}

/// Reads and removes the column attributes (`#[primary_key]`, `#[index]`) of one field; they
/// are this macro's, and the compiler does not know them.
fn parse_column(field: &mut syn::Field, errors: &mut Errors) -> Option<Column> {
    let ident = field.ident.clone()?;
    let mut column = Column {
        ident,
        ty: field.ty.clone(),
        primary_key: false,
        auto_inc: None,
        index: None,
    };
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut field.attrs) {
        if attr.path().is_ident("primary_key") {
            if column.primary_key {
                errors.at(
                    attr.span(),
                    "`#[primary_key]` is written twice on this field",
                );
            }
            column.primary_key = true;
            if let syn::Meta::List(_) = attr.meta {
                let result = attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("auto_inc") {
                        column.auto_inc = Some(meta.path.span());
                        Ok(())
                    } else {
                        Err(meta.error("`#[primary_key]` takes only `auto_inc`"))
                    }
                });
                if let Err(e) = result {
                    errors.push(e);
                }
            }
        } else if attr.path().is_ident("index") {
            let mut kind = None;
            let mut unique = false;
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("hash") {
                    kind = Some(IndexKind::Hash);
                } else if meta.path.is_ident("btree") {
                    kind = Some(IndexKind::BTree);
                } else if meta.path.is_ident("unique") {
                    unique = true;
                } else if meta.path.is_ident("auto_inc") {
                    column.auto_inc = Some(meta.path.span());
                } else {
                    return Err(meta.error(
                        "unknown index option; write `#[index(hash)]` or `#[index(btree)]`, \
                         optionally with `unique` and `auto_inc`",
                    ));
                }
                Ok(())
            });
            match (result, kind) {
                (Err(e), _) => errors.push(e),
                (Ok(()), None) => errors.at(
                    attr.span(),
                    "say which index: `#[index(hash)]` for lookups or `#[index(btree)]` for \
                     lookups and ranges",
                ),
                (Ok(()), Some(kind)) => column.index = Some(Index { kind, unique }),
            }
        } else if attr.path().is_ident("auto_inc") {
            column.auto_inc = Some(attr.span());
        } else {
            kept.push(attr);
        }
    }
    field.attrs = kept;
    if column.primary_key && column.index.is_some() {
        errors.at(
            field.span(),
            "the primary key is already a unique index; remove `#[index]` from this field",
        );
    }
    Some(column)
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse_options(attr, &mut errors);
    let mut item = match syn::parse2::<ItemStruct>(item) {
        Ok(item) => item,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "`#[table]` goes on a struct with named fields, one per column",
            )
            .to_compile_error();
        }
    };
    if let Err(e) = check_generics(&item.generics) {
        errors.push(e);
    }
    let mut columns: Vec<Column> = Vec::new();
    match &mut item.fields {
        Fields::Named(named) => {
            for field in named.named.iter_mut() {
                columns.extend(parse_column(field, &mut errors));
            }
        }
        other => errors.at(
            if other.is_empty() {
                item.ident.span()
            } else {
                other.span()
            },
            "a table needs named fields, one per column: `struct Name { id: u64, .. }`",
        ),
    }
    let table_name = options
        .name
        .as_ref()
        .map_or_else(|| item.ident.to_string().to_lowercase(), LitStr::value);
    if item.ident == table_name {
        errors.at(
            item.ident.span(),
            format!(
                "name the row struct in CamelCase (`{}`): the table's accessor trait is called \
                 `{table_name}`",
                upper_first(&table_name)
            ),
        );
    }
    if let Some(by) = &options.partition_by {
        match columns.iter_mut().find(|c| c.ident == *by) {
            None => errors.at(
                by.span(),
                format!("table `{table_name}` has no column `{by}` to partition by"),
            ),
            Some(column) if column.index.is_some() => errors.at(
                by.span(),
                format!(
                    "`{by}` is indexed already; the partition column gets an ordered index of its \
                     own: remove its `#[index]`"
                ),
            ),
            Some(column) if column.primary_key => errors.at(
                by.span(),
                "partition by a column other than the primary key (one row per partition \
                 would make every reducer declare each row it touches)",
            ),
            Some(column) => {
                column.index = Some(Index {
                    kind: IndexKind::Partition,
                    unique: false,
                });
            }
        }
        if let Some(unique) = columns
            .iter()
            .find(|c| c.index.as_ref().is_some_and(|i| i.unique))
        {
            errors.at(
                unique.ident.span(),
                "a partitioned table cannot have a unique index: uniqueness would cross \
                 partitions, which reducers writing different partitions cannot check",
            );
        }
    }
    let primary: Vec<&Column> = columns.iter().filter(|c| c.primary_key).collect();
    match primary.as_slice() {
        [] if matches!(item.fields, Fields::Named(_)) => errors.at(
            item.ident.span(),
            format!(
                "table `{table_name}` has no primary key; mark one column with `#[primary_key]` \
                 (or `#[primary_key(auto_inc)]` for a generated integer id)"
            ),
        ),
        [_, second, ..] => errors.at(
            second.ident.span(),
            "a table has one primary key; remove `#[primary_key]` from all columns but one",
        ),
        _ => {}
    }
    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote!(#errors #item);
    }
    let Some(primary) = primary.first() else {
        return quote!(#item);
    };
    generate(&item, &options, &table_name, &columns, primary)
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn generate(
    item: &ItemStruct,
    options: &Options,
    table_name: &str,
    columns: &[Column],
    primary: &Column,
) -> TokenStream {
    let abi = abi();
    let private = private();
    let vis = &item.vis;
    let row = &item.ident;
    let span = row.span();
    let impl_type = impl_struct(item, &item.ident.to_string());

    let column_names: Vec<String> = columns.iter().map(|c| c.ident.to_string()).collect();
    let column_defs = columns.iter().map(|c| {
        let name = c.ident.to_string();
        let ty = &c.ty;
        let auto_inc = c.auto_inc.is_some();
        quote! {
            #abi::Column {
                name: ::std::string::String::from(#name),
                ty: <#ty as #abi::IntersticeType>::ty(),
                auto_inc: #auto_inc,
            }
        }
    });
    let index_defs = columns.iter().filter_map(|c| {
        let index = c.index.as_ref()?;
        let name = c.ident.to_string();
        let kind = match index.kind {
            IndexKind::Hash => quote!(#abi::IndexKind::Hash),
            IndexKind::BTree => quote!(#abi::IndexKind::BTree),
            IndexKind::Partition => quote!(#abi::IndexKind::Partition),
        };
        let unique = index.unique;
        Some(quote! {
            #abi::IndexSchema {
                column: ::std::string::String::from(#name),
                kind: #kind,
                unique: #unique,
            }
        })
    });
    let persistence = match options.persistence.as_ref().map(|(k, _)| k.as_str()) {
        Some("stateful") => quote!(#abi::Persistence::Stateful),
        Some("ephemeral") => quote!(#abi::Persistence::Ephemeral),
        _ => quote!(#abi::Persistence::Logged),
    };
    let visibility = if options.public {
        quote!(#abi::Visibility::Public)
    } else {
        quote!(#abi::Visibility::Private)
    };
    let pk_ident = &primary.ident;
    let pk_ty = &primary.ty;
    let pk_name = pk_ident.to_string();

    // The partition column must be an integer: a bound whose message says so.
    let partition_check = options.partition_by.as_ref().and_then(|by| {
        let column = columns.iter().find(|c| c.ident == *by)?;
        let ty = &column.ty;
        Some(quote_spanned! {ty.span()=> let _ = #private::assert_partition_key::<#ty>; })
    });
    // Read by `#[reducer(writes(<table>[..]))]` in this crate, to say at compile time that a
    // partition of an unpartitioned table cannot be declared.
    let partition_const = format_ident!("__INTERSTICE_PARTITIONED_{}", table_name, span = span);
    let partitioned = options.partition_by.is_some();

    // `auto_inc` on a non-integer column: a bound whose message says which types work.
    let auto_inc_checks = columns.iter().filter_map(|c| {
        c.auto_inc?;
        let ty = &c.ty;
        Some(quote_spanned! {ty.span()=>
            let _ = #private::assert_auto_inc::<#ty>;
        })
    });

    // The accessor trait is named like the table, so `ctx.current.tables.<table>()` reads as
    // the table's name everywhere (SpacetimeDB does the same).
    let accessor = Ident::new(table_name, span);
    let handle = format_ident!("{}Handle", row);
    let row_of = format_ident!("__interstice_row_of_{}", table_name, span = span);
    let row_of_message =
        format!("`{{Self}}` is not the row type of table `{table_name}`; write `row: {row}`");
    let row_of_label = format!("table `{table_name}` holds `{row}` rows");
    let register = register_ident("table", table_name, span);
    let export = export_attrs();

    let index_methods = columns.iter().enumerate().filter_map(|(i, c)| {
        let index = c.index.as_ref()?;
        let ty = &c.ty;
        let col = c.ident.to_string();
        let at = i as i32;
        let find = format_ident!("find_by_{}", c.ident);
        let find_doc = if index.unique {
            format!("The row whose `{col}` equals `key` (unique index), if any.")
        } else {
            format!("The rows whose `{col}` equals `key`.")
        };
        let find = if index.unique {
            quote! {
                #[doc = #find_doc]
                pub fn #find(
                    &self,
                    key: impl ::core::borrow::Borrow<#ty>,
                ) -> ::interstice_sdk::Result<::core::option::Option<#row>> {
                    self.0.lookup_unique_column(#at, key.borrow())
                }
            }
        } else {
            quote! {
                #[doc = #find_doc]
                pub fn #find(
                    &self,
                    key: impl ::core::borrow::Borrow<#ty>,
                ) -> ::interstice_sdk::Result<::std::vec::Vec<#row>> {
                    self.0.lookup_column(#at, key.borrow())
                }
            }
        };
        let range = (index.kind != IndexKind::Hash).then(|| {
            let range = format_ident!("range_by_{}", c.ident);
            let doc = format!("The rows whose `{col}` lies in `range`, in `{col}` order.");
            quote! {
                #[doc = #doc]
                pub fn #range(
                    &self,
                    range: impl ::core::ops::RangeBounds<#ty>,
                ) -> ::interstice_sdk::Result<::std::vec::Vec<#row>> {
                    self.0.range_column(#at, range)
                }
            }
        });
        Some(quote!(#find #range))
    });
    let accessor_doc = format!(
        "The `{table_name}` table: `ctx.current.tables.{table_name}()`. Generated by `#[table]` \
         on [`{row}`]."
    );
    let handle_doc = format!(
        "The handle of table `{table_name}`; derefs to `TableHandle<{row}, M>` for `insert`, \
         `get`, `scan` and the rest."
    );

    quote! {
        #item
        #impl_type

        impl ::interstice_sdk::Table for #row {
            const NAME: &'static str = #table_name;
            const COLUMNS: &'static [&'static str] = &[#(#column_names),*];
            type Key = #pk_ty;

            fn key(&self) -> &#pk_ty {
                &self.#pk_ident
            }

            fn schema() -> #abi::TableSchema {
                #abi::TableSchema {
                    name: ::std::string::String::from(#table_name),
                    columns: ::std::vec![#(#column_defs),*],
                    primary_key: ::std::string::String::from(#pk_name),
                    indexes: ::std::vec![#(#index_defs),*],
                    persistence: #persistence,
                    visibility: #visibility,
                }
            }
        }

        const _: () = {
            #(#auto_inc_checks)*
            #partition_check
        };

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis const #partition_const: bool = #partitioned;

        #[doc = #accessor_doc]
        #[allow(non_camel_case_types)]
        #vis trait #accessor: ::interstice_sdk::TableAccess {
            #[doc = #accessor_doc]
            fn #accessor(&self) -> #handle<Self::Mode> {
                #handle(::interstice_sdk::TableAccess::table::<#row>(self))
            }
        }

        impl<A: ::interstice_sdk::TableAccess + ?::core::marker::Sized> #accessor for A {}

        #[doc = #handle_doc]
        #vis struct #handle<M = ::interstice_sdk::ReadWrite>(
            ::interstice_sdk::TableHandle<#row, M>,
        );

        impl<M> ::core::ops::Deref for #handle<M> {
            type Target = ::interstice_sdk::TableHandle<#row, M>;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl<M> #handle<M> {
            #(#index_methods)*
        }

        /// Implemented by the row type only; subscriptions to this table check their
        /// argument types against it.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[diagnostic::on_unimplemented(message = #row_of_message, label = #row_of_label)]
        #vis trait #row_of {}

        impl #row_of for #row {}

        #export
        pub extern "C" fn #register() {
            #private::register_table::<#row>();
        }
    }
}

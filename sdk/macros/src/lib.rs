//! The attribute macros of `interstice-sdk`. Use them through `interstice_sdk::*`; the
//! documentation of what they accept lives in that crate.
//!
//! Every mistake that can be caught while expanding is reported here, at the span of the
//! offending tokens, with a message that says what to write instead. Mistakes that need types
//! (a subscription's row type, `auto_inc` on a non-integer) are turned into trait bounds whose
//! `#[diagnostic::on_unimplemented]` messages say the same.
//!
//! Architecture Invariant: the generated code names only `::interstice_sdk` paths, so a module
//! depends on `interstice-sdk` alone.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod bindings;
mod function;
mod module;
mod table;
mod types;
mod util;

/// Makes a struct a table; see the `interstice-sdk` crate documentation.
#[proc_macro_attribute]
pub fn table(attr: TokenStream, item: TokenStream) -> TokenStream {
    table::expand(attr.into(), item.into()).into()
}

/// Marks a reducer; see the `interstice-sdk` crate documentation.
#[proc_macro_attribute]
pub fn reducer(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(function::Kind::Reducer, attr.into(), item.into()).into()
}

/// Marks a query; see the `interstice-sdk` crate documentation.
#[proc_macro_attribute]
pub fn query(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand(function::Kind::Query, attr.into(), item.into()).into()
}

/// Makes a struct or enum an Interstice type; see the `interstice-sdk` crate documentation.
#[proc_macro_attribute]
pub fn interstice_type(attr: TokenStream, item: TokenStream) -> TokenStream {
    types::expand(attr.into(), item.into()).into()
}

/// The module's exports; once, at the crate root. See the `interstice-sdk` crate documentation.
#[proc_macro]
pub fn interstice_module(input: TokenStream) -> TokenStream {
    module::expand(input.into()).into()
}

//! `#[reducer]` and `#[query]`: argument decoding wrappers, schemas and registration exports,
//! plus the compile-time checks on contexts and subscription signatures.

use std::str::FromStr;

use interstice_abi::{Event, TableEvent};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Token};

use crate::util::{Errors, abi, export_attrs, private, register_ident};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Reducer,
    Query,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Reducer => "reducer",
            Kind::Query => "query",
        }
    }

    fn context(self) -> &'static str {
        match self {
            Kind::Reducer => "ReducerContext",
            Kind::Query => "QueryContext",
        }
    }
}

#[derive(Default)]
struct Options {
    reads: Option<Vec<String>>,
    writes: Option<Vec<String>>,
    calls: Option<Vec<String>>,
    on: Option<(Event, LitStr)>,
}

/// One name in `reads(..)`, `writes(..)` or `calls(..)`: `table`, `module.table`, or a string
/// for names that are not identifiers (`"my-module.table"`).
fn parse_name(input: ParseStream) -> syn::Result<String> {
    if input.peek(LitStr) {
        return Ok(input.parse::<LitStr>()?.value());
    }
    let mut name = Ident::parse_any(input)?.unraw().to_string();
    while input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        name.push('.');
        name.push_str(&Ident::parse_any(input)?.unraw().to_string());
    }
    Ok(name)
}

fn parse_names(input: ParseStream) -> syn::Result<Vec<String>> {
    let content;
    syn::parenthesized!(content in input);
    let names = content.parse_terminated(parse_name, Token![,])?;
    Ok(names.into_iter().collect())
}

fn parse_options(kind: Kind, attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("reads") {
            options.reads = Some(parse_names(meta.input)?);
        } else if meta.path.is_ident("writes") {
            if kind == Kind::Query {
                return Err(meta.error(
                    "queries are read-only: declare `reads(..)` and `calls(..)` only, or make \
                     this a `#[reducer]`",
                ));
            }
            options.writes = Some(parse_names(meta.input)?);
        } else if meta.path.is_ident("calls") {
            options.calls = Some(parse_names(meta.input)?);
        } else if meta.path.is_ident("on") {
            if kind == Kind::Query {
                return Err(meta.error(
                    "queries cannot subscribe to events (they cannot change anything); use \
                     `#[reducer(on = \"...\")]`",
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            // `<table>.<kind>` names a table of this module: the module is the package.
            let text = lit.value();
            let text = match (text.split('.').count(), std::env::var("CARGO_PKG_NAME")) {
                (2, Ok(package)) => format!("{package}.{text}"),
                _ => text,
            };
            match Event::from_str(&text) {
                Ok(event) => options.on = Some((event, lit)),
                Err(e) => return Err(syn::Error::new(lit.span(), e.0)),
            }
        } else {
            let expected = match kind {
                Kind::Reducer => "`reads(..)`, `writes(..)`, `calls(..)` or `on = \"...\"`",
                Kind::Query => "`reads(..)` or `calls(..)`",
            };
            return Err(meta.error(format!(
                "unknown {} option; expected {expected}",
                kind.word()
            )));
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }
    options
}

struct Arg {
    name: String,
    ty: syn::Type,
}

/// The last path segment of a type, e.g. `ReducerContext` for `interstice_sdk::ReducerContext`.
fn last_segment(ty: &syn::Type) -> Option<&syn::PathSegment> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

pub fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse_options(kind, attr, &mut errors);
    let func = match syn::parse2::<ItemFn>(item) {
        Ok(func) => func,
        Err(e) => {
            return syn::Error::new(e.span(), format!("`#[{}]` goes on a function", kind.word()))
                .to_compile_error();
        }
    };
    let sig = &func.sig;
    if let Some(param) = sig.generics.params.first() {
        errors.at(
            param.span(),
            format!(
                "a {} cannot be generic: the node calls it with concrete types",
                kind.word()
            ),
        );
    }
    if let Some(asyncness) = sig.asyncness {
        errors.at(
            asyncness.span(),
            format!(
                "a {} runs to completion inside one transaction; remove `async`",
                kind.word()
            ),
        );
    }

    // The context comes first, by value.
    let context_hint = format!(
        "the first parameter of a {} must be its context: `ctx: {}`",
        kind.word(),
        kind.context()
    );
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => errors.at(sig.paren_token.span.join(), &context_hint),
        Some(FnArg::Receiver(r)) => errors.at(r.span(), &context_hint),
        Some(FnArg::Typed(t)) => {
            let found = last_segment(&t.ty).map(|s| s.ident.to_string());
            match (kind, found.as_deref()) {
                (Kind::Reducer, Some("ReducerContext")) | (Kind::Query, Some("QueryContext")) => {}
                (Kind::Query, Some("ReducerContext")) => errors.at(
                    t.ty.span(),
                    "queries are read-only and take `ctx: QueryContext`; to change tables, \
                     make this a `#[reducer]`",
                ),
                _ => errors.at(t.ty.span(), &context_hint),
            }
        }
    }
    let mut args = Vec::new();
    for (i, input) in inputs.enumerate() {
        match input {
            FnArg::Typed(t) => {
                let name = match &*t.pat {
                    Pat::Ident(p) => p.ident.unraw().to_string(),
                    _ => format!("arg{i}"),
                };
                args.push(Arg {
                    name,
                    ty: (*t.ty).clone(),
                });
            }
            FnArg::Receiver(r) => errors.at(r.span(), "reducers and queries take no `self`"),
        }
    }

    // A query returns a value; `Result<T, E>` fails the query with `E`'s message.
    let mut query_result = None;
    if kind == Kind::Query {
        match &sig.output {
            ReturnType::Default => errors.at(
                sig.ident.span(),
                "a query returns its answer: add a return type, e.g. `-> Vec<Row>`",
            ),
            ReturnType::Type(_, ty) => {
                if matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty()) {
                    errors.at(
                        ty.span(),
                        "a query returns its answer, not `()`: e.g. `-> Vec<Row>`",
                    );
                }
                query_result = Some(query_value_type(ty));
            }
        }
    }

    let mut checks = Vec::new();
    if let Some((event, lit)) = &options.on {
        checks = subscription_checks(event, lit, &args, &mut errors);
        if event.is_read_only() && options.writes.is_some() {
            errors.at(
                lit.span(),
                format!(
                    "`{event}` hooks only read tables, like queries: declare `reads(..)`, not \
                     `writes(..)`; change state in another reducer"
                ),
            );
        }
    }

    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote!(#errors #func);
    }
    generate(kind, &func, &options, &args, query_result, checks)
}

/// For `-> Result<T, E>` (any type whose last segment is `Result`): `(T, true)`; else the type.
fn query_value_type(ty: &syn::Type) -> (syn::Type, bool) {
    if let Some(segment) = last_segment(ty)
        && segment.ident == "Result"
        && let syn::PathArguments::AngleBracketed(generics) = &segment.arguments
        && let Some(syn::GenericArgument::Type(ok)) = generics.args.first()
    {
        return (ok.clone(), true);
    }
    (ty.clone(), false)
}

/// Checks a subscribed reducer's parameters against its event: the count here, the types
/// through trait bounds at each argument's span.
fn subscription_checks(
    event: &Event,
    lit: &LitStr,
    args: &[Arg],
    errors: &mut Errors,
) -> Vec<TokenStream> {
    let private = private();
    let at = |errors: &mut Errors, message: String| {
        let span = args.first().map_or(lit.span(), |a| a.ty.span());
        errors.at(span, message);
    };
    match event {
        Event::Init | Event::Load => {
            if !args.is_empty() {
                at(
                    errors,
                    format!(
                        "`{event}` reducers take only the context: write \
                         `fn name(ctx: ReducerContext)`"
                    ),
                );
            }
            Vec::new()
        }
        Event::Connect | Event::Disconnect => {
            if args.len() != 1 {
                let message = format!(
                    "`{event}` reducers take the peer's node id: write \
                     `fn name(ctx: ReducerContext, node_id: String)`"
                );
                if args.is_empty() {
                    errors.at(lit.span(), message);
                } else {
                    at(errors, message);
                }
                return Vec::new();
            }
            let ty = &args[0].ty;
            vec![quote_spanned! {ty.span()=> let _ = #private::assert_node_id::<#ty>; }]
        }
        Event::Render
        | Event::Input
        | Event::AudioOutput
        | Event::AudioInput
        | Event::FileChanged => {
            let hint = event.signature_hint("");
            if args.len() != 1 {
                let message = format!("`{event}` hooks are written `{hint}`");
                if args.is_empty() {
                    errors.at(lit.span(), message);
                } else {
                    at(errors, message);
                }
                return Vec::new();
            }
            let ty = &args[0].ty;
            let assert = format_ident!("assert_{}_arg", event.to_string());
            vec![quote_spanned! {ty.span()=> let _ = #private::#assert::<#ty>; }]
        }
        Event::Table {
            node,
            module,
            table,
            kind,
        } => {
            let (expected, write) = match kind {
                TableEvent::Insert => (1, "`row: <row type>` (the inserted row)"),
                TableEvent::Delete => (1, "`row: <row type>` (the deleted row)"),
                TableEvent::Update => (2, "`old: <row type>, new: <row type>`"),
            };
            if args.len() != expected {
                let message = format!(
                    "`{event}` reducers take {} after the context: write {write}",
                    if expected == 1 { "one row" } else { "two rows" },
                );
                if args.is_empty() {
                    errors.at(lit.span(), message);
                } else {
                    at(errors, message);
                }
                return Vec::new();
            }
            // Tables of this module are checked here; others when the node links modules.
            let own = std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == *module);
            if node.is_some() || !own {
                return Vec::new();
            }
            let row_of = format_ident!(
                "__interstice_row_of_{}",
                crate::util::sanitize(table),
                span = lit.span()
            );
            let mut checks = vec![quote! {
                fn __interstice_is_row<T: #row_of + ?::core::marker::Sized>() {}
            }];
            checks.extend(args.iter().map(|arg| {
                let ty = &arg.ty;
                quote_spanned! {ty.span()=> let _ = __interstice_is_row::<#ty>; }
            }));
            checks
        }
    }
}

fn generate(
    kind: Kind,
    func: &ItemFn,
    options: &Options,
    args: &[Arg],
    query_result: Option<(syn::Type, bool)>,
    checks: Vec<TokenStream>,
) -> TokenStream {
    let abi = abi();
    let private = private();
    let ident = &func.sig.ident;
    let name = ident.unraw().to_string();
    let span = ident.span();
    let wrapper = format_ident!(
        "__interstice_{}_{}",
        kind.word(),
        ident.unraw(),
        span = span
    );
    let register = register_ident(kind.word(), &name, span);
    let export = export_attrs();

    let vars: Vec<Ident> = (0..args.len())
        .map(|i| format_ident!("__arg{}", i))
        .collect();
    let decodes = args.iter().zip(&vars).map(|(arg, var)| {
        let ty = &arg.ty;
        let arg_name = &arg.name;
        quote! {
            let #var: #ty = #private::decode_arg(&mut __reader, #name, #arg_name)?;
        }
    });
    let fields = args.iter().map(|arg| {
        let ty = &arg.ty;
        let arg_name = &arg.name;
        quote!(#abi::Field::new(#arg_name, <#ty as #abi::IntersticeType>::ty()))
    });
    let collects: Vec<TokenStream> = args
        .iter()
        .map(|arg| {
            let ty = &arg.ty;
            quote!(<#ty as #abi::IntersticeType>::collect_defs(__defs);)
        })
        .collect();
    let names = |names: &Option<Vec<String>>| {
        let names = names.iter().flatten();
        quote!(::std::vec![#(::std::string::String::from(#names)),*])
    };
    let access = if options.reads.is_none() && options.writes.is_none() && options.calls.is_none() {
        quote!(::core::option::Option::None)
    } else {
        let (reads, writes, calls) = (
            names(&options.reads),
            names(&options.writes),
            names(&options.calls),
        );
        quote! {
            ::core::option::Option::Some(#abi::Access { reads: #reads, writes: #writes, calls: #calls })
        }
    };

    let call_and_register = match kind {
        Kind::Reducer => {
            let output = match &func.sig.output {
                ReturnType::Default => quote!(()),
                ReturnType::Type(_, ty) => quote!(#ty),
            };
            let output_span = match &func.sig.output {
                ReturnType::Default => span,
                ReturnType::Type(_, ty) => ty.span(),
            };
            let into_result = quote_spanned! {output_span=>
                <#output as #private::ReducerReturn>::into_result
            };
            let on = match &options.on {
                None => quote!(::core::option::Option::None),
                Some((event, _)) => {
                    let event = event_tokens(event);
                    quote!(::core::option::Option::Some(#event))
                }
            };
            quote! {
                #[doc(hidden)]
                #[allow(non_snake_case)]
                fn #wrapper(
                    __args: &[u8],
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let mut __reader = #abi::Reader::new(__args);
                    #(#decodes)*
                    #private::finish_args(&__reader, #name)?;
                    #into_result(#ident(::interstice_sdk::ReducerContext::__new(), #(#vars),*))
                }

                #export
                pub extern "C" fn #register() {
                    #private::register_reducer(
                        #abi::ReducerSchema {
                            name: ::std::string::String::from(#name),
                            args: ::std::vec![#(#fields),*],
                            access: #access,
                            on: #on,
                        },
                        |__defs| { #(#collects)* },
                        #wrapper,
                    );
                }
            }
        }
        Kind::Query => {
            let (value_ty, fallible) = query_result.unwrap_or_else(|| {
                (
                    syn::Type::Tuple(syn::TypeTuple {
                        paren_token: Default::default(),
                        elems: Default::default(),
                    }),
                    false,
                )
            });
            let value = if fallible {
                quote! {
                    #ident(::interstice_sdk::QueryContext::__new(), #(#vars),*)
                        .map_err(|e| ::std::string::ToString::to_string(&e))?
                }
            } else {
                quote!(#ident(::interstice_sdk::QueryContext::__new(), #(#vars),*))
            };
            let value_span = value_ty.span();
            let value_binding = quote_spanned! {value_span=> let __value: #value_ty = #value; };
            quote! {
                #[doc(hidden)]
                #[allow(non_snake_case)]
                fn #wrapper(
                    __args: &[u8],
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    let mut __reader = #abi::Reader::new(__args);
                    #(#decodes)*
                    #private::finish_args(&__reader, #name)?;
                    #value_binding
                    ::core::result::Result::Ok(#abi::to_bytes(&__value))
                }

                #export
                pub extern "C" fn #register() {
                    #private::register_query(
                        #abi::QuerySchema {
                            name: ::std::string::String::from(#name),
                            args: ::std::vec![#(#fields),*],
                            returns: <#value_ty as #abi::IntersticeType>::ty(),
                            access: #access,
                        },
                        |__defs| {
                            #(#collects)*
                            <#value_ty as #abi::IntersticeType>::collect_defs(__defs);
                        },
                        #wrapper,
                    );
                }
            }
        }
    };
    let checks = (!checks.is_empty()).then(|| {
        quote! {
            const _: () = { #(#checks)* };
        }
    });
    quote! {
        #func
        #call_and_register
        #checks
    }
}

/// The tokens that build `event` at run time (it was parsed and checked at expansion).
fn event_tokens(event: &Event) -> TokenStream {
    let abi = abi();
    match event {
        Event::Init => quote!(#abi::Event::Init),
        Event::Load => quote!(#abi::Event::Load),
        Event::Connect => quote!(#abi::Event::Connect),
        Event::Disconnect => quote!(#abi::Event::Disconnect),
        Event::Render => quote!(#abi::Event::Render),
        Event::Input => quote!(#abi::Event::Input),
        Event::AudioOutput => quote!(#abi::Event::AudioOutput),
        Event::AudioInput => quote!(#abi::Event::AudioInput),
        Event::FileChanged => quote!(#abi::Event::FileChanged),
        Event::Table {
            node,
            module,
            table,
            kind,
        } => {
            let node = match node {
                Some(node) => {
                    quote!(::core::option::Option::Some(::std::string::String::from(#node)))
                }
                None => quote!(::core::option::Option::None),
            };
            let kind = match kind {
                TableEvent::Insert => quote!(#abi::TableEvent::Insert),
                TableEvent::Update => quote!(#abi::TableEvent::Update),
                TableEvent::Delete => quote!(#abi::TableEvent::Delete),
            };
            quote! {
                #abi::Event::Table {
                    node: #node,
                    module: ::std::string::String::from(#module),
                    table: ::std::string::String::from(#table),
                    kind: #kind,
                }
            }
        }
    }
}

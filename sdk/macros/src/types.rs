//! `#[interstice_type]`: the ABI type definition and the encoding of a user struct or enum.
//!
//! The generated `encode` writes fields in declaration order and enum variants as their index
//! (a varint), exactly the layout of `interstice_abi::encode`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Fields, Item, ItemEnum, ItemStruct};

use crate::util::{abi, export_attrs, private, register_ident};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    // `builtin`: a type the SDK itself provides (the platform hooks' arguments). It has no
    // registration export of its own; the hooks that take it register it, so modules that do
    // not use it do not carry it in their schema.
    let builtin = match attr.to_string().as_str() {
        "" => false,
        "builtin" => true,
        _ => {
            return syn::Error::new(attr.span(), "`#[interstice_type]` takes no options")
                .to_compile_error();
        }
    };
    let item = match syn::parse2::<Item>(item) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error(),
    };
    let (name, body) = match &item {
        Item::Struct(s) => (
            &s.ident,
            check_generics(&s.generics).map(|()| impl_struct(s, &s.ident.to_string())),
        ),
        Item::Enum(e) => (
            &e.ident,
            check_generics(&e.generics).map(|()| impl_enum(e, &e.ident.to_string())),
        ),
        other => {
            return syn::Error::new(
                other.span(),
                "`#[interstice_type]` goes on a struct or an enum",
            )
            .to_compile_error();
        }
    };
    let body = body.unwrap_or_else(|e| e.to_compile_error());
    let register = register_ident("type", &name.to_string(), name.span());
    let private = private();
    let export = export_attrs();
    if builtin {
        return quote! {
            #item
            #body
        };
    }
    quote! {
        #item
        #body
        #export
        pub extern "C" fn #register() {
            #private::register_type::<#name>();
        }
    }
}

pub fn check_generics(generics: &syn::Generics) -> syn::Result<()> {
    match generics.params.first() {
        Some(param) => Err(syn::Error::new(
            param.span(),
            "Interstice types cannot be generic: the schema names one concrete type; \
             declare a struct per instantiation",
        )),
        None => Ok(()),
    }
}

/// `Field::new(name, <T>::ty())` for each field; tuple fields are named `0`, `1`, ….
fn field_defs(fields: &Fields) -> Vec<TokenStream> {
    let abi = abi();
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), |id| id.to_string());
            let ty = &f.ty;
            quote!(#abi::Field::new(#name, <#ty as #abi::IntersticeType>::ty()))
        })
        .collect()
}

fn collect_fields(fields: &Fields) -> Vec<TokenStream> {
    let abi = abi();
    fields
        .iter()
        .map(|f| {
            let ty = &f.ty;
            quote!(<#ty as #abi::IntersticeType>::collect_defs(__defs);)
        })
        .collect()
}

/// Bindings for a pattern over `fields`: `{ a: __f0, b: __f1 }`, `(__f0, __f1)` or nothing.
/// The names are the macro's own, so no field name can shadow `__out` or `__reader`.
fn bindings(fields: &Fields) -> (TokenStream, Vec<syn::Ident>) {
    let ids: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("__f{}", i))
        .collect();
    match fields {
        Fields::Named(named) => {
            let names = named.named.iter().map(|f| &f.ident);
            (quote!({ #(#names: #ids),* }), ids)
        }
        Fields::Unnamed(_) => (quote!(( #(#ids),* )), ids),
        Fields::Unit => (TokenStream::new(), Vec::new()),
    }
}

/// A constructor that decodes each field in order: `{ a: decode?, .. }` or `(decode?, ..)`.
fn decode_fields(fields: &Fields) -> TokenStream {
    let abi = abi();
    let decode = |f: &syn::Field| {
        let ty = &f.ty;
        quote!(<#ty as #abi::IntersticeType>::decode(__reader)?)
    };
    match fields {
        Fields::Named(named) => {
            let parts = named.named.iter().map(|f| {
                let id = &f.ident;
                let d = decode(f);
                quote!(#id: #d)
            });
            quote!({ #(#parts),* })
        }
        Fields::Unnamed(unnamed) => {
            let parts = unnamed.unnamed.iter().map(decode);
            quote!(( #(#parts),* ))
        }
        Fields::Unit => TokenStream::new(),
    }
}

/// `IntersticeType` for `item`, named `name` in the schema (its Rust name, but for the types of
/// bindings).
pub fn impl_struct(item: &ItemStruct, name: &str) -> TokenStream {
    let abi = abi();
    let ident = &item.ident;
    let defs = field_defs(&item.fields);
    let collect = collect_fields(&item.fields);
    let (pattern, ids) = bindings(&item.fields);
    let decode = decode_fields(&item.fields);
    quote! {
        impl #abi::IntersticeType for #ident {
            fn ty() -> #abi::Type {
                #abi::Type::Named(::std::string::String::from(#name))
            }
            fn collect_defs(__defs: &mut #abi::TypeDefs) {
                let def = #abi::TypeDef::Struct {
                    name: ::std::string::String::from(#name),
                    fields: ::std::vec![#(#defs),*],
                };
                if __defs.add(def) {
                    #(#collect)*
                }
            }
            #[allow(unused_variables)]
            fn encode(&self, __out: &mut ::std::vec::Vec<u8>) {
                let #ident #pattern = self;
                #(#abi::IntersticeType::encode(#ids, __out);)*
            }
            #[allow(unused_variables)]
            fn decode(
                __reader: &mut #abi::Reader<'_>,
            ) -> ::core::result::Result<Self, #abi::DecodeError> {
                // One level deeper per user type: recursive types (through `Box`) stay bounded.
                __reader.nested(|__reader| ::core::result::Result::Ok(#ident #decode))
            }
        }
    }
}

/// `IntersticeType` for `item`, named `name` in the schema.
pub fn impl_enum(item: &ItemEnum, name: &str) -> TokenStream {
    let abi = abi();
    let ident = &item.ident;
    let mut variant_defs = Vec::new();
    let mut collect = Vec::new();
    let mut encode_arms = Vec::new();
    let mut decode_arms = Vec::new();
    for (index, variant) in item.variants.iter().enumerate() {
        let v = &variant.ident;
        let vname = v.to_string();
        let defs = field_defs(&variant.fields);
        variant_defs.push(quote! {
            #abi::Variant { name: ::std::string::String::from(#vname), fields: ::std::vec![#(#defs),*] }
        });
        collect.extend(collect_fields(&variant.fields));
        let (pattern, ids) = bindings(&variant.fields);
        let tag = index as u64;
        encode_arms.push(quote! {
            #ident::#v #pattern => {
                #abi::encode_varint(#tag, __out);
                #(#abi::IntersticeType::encode(#ids, __out);)*
            }
        });
        let decode = decode_fields(&variant.fields);
        decode_arms.push(quote!(#tag => ::core::result::Result::Ok(#ident::#v #decode),));
    }
    let encode_body = if encode_arms.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#encode_arms)* })
    };
    quote! {
        impl #abi::IntersticeType for #ident {
            fn ty() -> #abi::Type {
                #abi::Type::Named(::std::string::String::from(#name))
            }
            fn collect_defs(__defs: &mut #abi::TypeDefs) {
                let def = #abi::TypeDef::Enum {
                    name: ::std::string::String::from(#name),
                    variants: ::std::vec![#(#variant_defs),*],
                };
                if __defs.add(def) {
                    #(#collect)*
                }
            }
            fn encode(&self, __out: &mut ::std::vec::Vec<u8>) {
                #encode_body
            }
            #[allow(unused_variables)]
            fn decode(
                __reader: &mut #abi::Reader<'_>,
            ) -> ::core::result::Result<Self, #abi::DecodeError> {
                __reader.nested(|__reader| {
                    let offset = __reader.pos();
                    let tag = __reader.varint()?;
                    match tag {
                        #(#decode_arms)*
                        _ => ::core::result::Result::Err(__reader.bad_variant(tag, offset)),
                    }
                })
            }
        }
    }
}

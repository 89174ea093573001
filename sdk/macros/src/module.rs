//! `interstice_module!`: the exports every module needs, once per crate.

use interstice_abi::Authority;
use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

use crate::util::{abi, private};

struct Args {
    public: bool,
    authorities: Vec<Ident>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args {
            public: false,
            authorities: Vec::new(),
        };
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            if key == "visibility" {
                let value: Ident = input.parse()?;
                args.public = match value.to_string().as_str() {
                    "Public" => true,
                    "Private" => false,
                    _ => {
                        return Err(syn::Error::new(
                            value.span(),
                            "visibility is `Public` or `Private`",
                        ));
                    }
                };
            } else if key == "authorities" {
                let content;
                syn::bracketed!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                for name in names {
                    if let Err(e) = name.to_string().parse::<Authority>() {
                        return Err(syn::Error::new(name.span(), e.0));
                    }
                    args.authorities.push(name);
                }
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `visibility: Public|Private` or `authorities: [Gpu, Input, ..]`",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

pub fn expand(input: TokenStream) -> TokenStream {
    let args = match syn::parse2::<Args>(input) {
        Ok(args) => args,
        Err(e) => return e.to_compile_error(),
    };
    let abi = abi();
    let private = private();
    let visibility = if args.public {
        quote!(#abi::Visibility::Public)
    } else {
        quote!(#abi::Visibility::Private)
    };
    let authorities = args.authorities.iter();
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let bindings = match crate::bindings::load(std::path::Path::new(&crate_dir)) {
        Ok(bindings) => bindings,
        Err(message) => {
            return syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
        }
    };
    let node_names = bindings.nodes.iter().map(|(n, _)| n);
    let node_addresses = bindings.nodes.iter().map(|(_, a)| a);
    let bindings = bindings.tokens;
    quote! {
        #bindings

        /// What `interstice_module!` knows about this module: its Cargo name and version, its
        /// visibility and the authorities it claims.
        #[doc(hidden)]
        pub const __INTERSTICE_MODULE: #private::ModuleInfo = #private::ModuleInfo {
            name: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            visibility: #visibility,
            authorities: &[#(#abi::Authority::#authorities),*],
            nodes: &[#((#node_names, #node_addresses)),*],
        };

        // In an anonymous const: exported on wasm by name, invisible to the crate's namespace.
        const _: () = {
            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            pub extern "C" fn interstice_abi_version() -> i32 {
                #private::abi_version()
            }

            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            pub extern "C" fn interstice_schema() -> i64 {
                #private::export_schema(&__INTERSTICE_MODULE)
            }

            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            pub extern "C" fn interstice_alloc(len: i32) -> i32 {
                #private::export_alloc(len)
            }

            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            pub extern "C" fn interstice_reducer(index: i32, args: i32, len: i32) -> i32 {
                // SAFETY: the ABI requires the host to pass memory from `interstice_alloc`.
                unsafe { #private::export_reducer(index, args, len) }
            }

            #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
            pub extern "C" fn interstice_query(index: i32, args: i32, len: i32) -> i32 {
                // SAFETY: the ABI requires the host to pass memory from `interstice_alloc`.
                unsafe { #private::export_query(index, args, len) }
            }
        };
    }
}

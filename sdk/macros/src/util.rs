//! Helpers shared by the macros.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

/// `::interstice_sdk::__private`, where the generated code finds everything it needs.
pub fn private() -> TokenStream {
    quote!(::interstice_sdk::__private)
}

/// `::interstice_sdk::__private::abi`.
pub fn abi() -> TokenStream {
    quote!(::interstice_sdk::__private::abi)
}

/// Attributes that make a function one of the registration exports the host calls:
/// exported unmangled on wasm only, so several modules can link into one native test binary.
pub fn export_attrs() -> TokenStream {
    quote! {
        #[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
        #[doc(hidden)]
        #[allow(non_snake_case, dead_code)]
    }
}

/// `__interstice_register_<kind>_<name>`, the export `interstice_abi::host` describes.
pub fn register_ident(kind: &str, name: &str, span: Span) -> Ident {
    format_ident!(
        "{}{}_{}",
        interstice_abi::host::EXPORT_REGISTER_PREFIX,
        kind,
        sanitize(name),
        span = span
    )
}

/// A Rust identifier fragment for a name that may hold characters identifiers cannot.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Collects errors so one expansion can report all of them at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

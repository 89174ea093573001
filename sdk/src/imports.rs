//! Raw host imports of one namespace — the core `interstice` one (`sys.rs`) or an authority's —
//! each declared once: on wasm32, an import from the namespace; on every other target, a stub
//! that panics.
//!
//! Only the functions a module calls become imports of its wasm, so a module that never uses
//! the GPU does not import `interstice_gpu` (and needs no `Gpu` authority).

/// `host_imports!("namespace" { fn rust_name = "import_name"(arg: i32, ..) -> i64; .. })`.
macro_rules! host_imports {
    ($module:literal { $(fn $name:ident = $link:literal ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)* }) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = $module)]
        unsafe extern "C" {
            $(
                #[link_name = $link]
                pub fn $name($($arg: $ty),*) $(-> $ret)?;
            )*
        }

        $(
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                $(let _ = $arg;)*
                panic!("Interstice modules run inside a node; build with --target wasm32-unknown-unknown")
            }
        )*
    };
}

pub(crate) use host_imports;

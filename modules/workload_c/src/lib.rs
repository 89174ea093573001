//! Workload module `workload_c`: the shared body of `modules/workload/common.rs`, linked to
//! `workload_a` (a cross-module read and nested calls).

use interstice_sdk::*;

interstice_module!();

include!("../../workload/common.rs");

links_to!(workload_a);

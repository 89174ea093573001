//! Workload module `workload_b`: the shared body of `modules/workload/common.rs`, linked to
//! `workload_c` (a cross-module read and nested calls).

use interstice_sdk::*;

interstice_module!();

include!("../../workload/common.rs");

links_to!(workload_c);

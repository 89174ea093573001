//! Partitioned tables and partition declarations, checked natively: the schema says what the
//! source says, in the canonical form the host parses again.

use interstice_sdk::__private::abi::{ABI_VERSION, Access, IndexKind};
use interstice_sdk::__private::schema;
use interstice_sdk::*;

interstice_module!();

#[table(partition_by = region)]
#[derive(Clone, Debug, PartialEq)]
pub struct Cells {
    #[primary_key]
    id: u64,
    region: u32,
    value: i64,
}

/// One region's step: reads its neighbours, writes itself.
#[reducer(reads(cells[region-1..=region+1]), writes(cells[region]))]
fn step(_ctx: ReducerContext, region: u32) {
    let _ = region;
}

/// The whole table, for setting it up.
#[reducer(writes(cells))]
fn seed(_ctx: ReducerContext, regions: u32) {
    let _ = regions;
}

#[test]
fn partitions_are_declared_in_the_schema() {
    for register in [
        __interstice_register_table_cells,
        __interstice_register_reducer_step,
        __interstice_register_reducer_seed,
    ] {
        register();
    }
    let schema = schema(&__INTERSTICE_MODULE);
    schema.validate(ABI_VERSION).unwrap();
    let cells = schema.table("cells").unwrap();
    assert_eq!(cells.indexes.len(), 1);
    assert_eq!(cells.indexes[0].column, "region");
    assert_eq!(cells.indexes[0].kind, IndexKind::Partition);
    assert_eq!(cells.partition_column(), Some(1));
    let step = schema.reducers.iter().find(|r| r.name == "step").unwrap();
    assert_eq!(
        step.access,
        Some(Access {
            reads: vec!["cells[region - 1 ..= region + 1]".into()],
            writes: vec!["cells[region]".into()],
            calls: vec![],
        })
    );
}

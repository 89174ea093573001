use interstice_sdk::*;

interstice_module!();

#[table(partition_by = region)]
pub struct Cells {
    #[primary_key]
    id: u64,
    region: u32,
}

#[table]
pub struct Plain {
    #[primary_key]
    id: u64,
}

#[table(partition_by = nope)]
pub struct Nowhere {
    #[primary_key]
    id: u64,
}

#[table(partition_by = label)]
pub struct Labelled {
    #[primary_key]
    id: u64,
    label: String,
}

#[reducer(writes(cells[zone]))]
fn unknown_argument(_ctx: ReducerContext, region: u32) {}

#[reducer(writes(cells[region]))]
fn string_argument(_ctx: ReducerContext, region: String) {}

#[reducer(writes(plain[region]))]
fn unpartitioned(_ctx: ReducerContext, region: u32) {}

#[reducer(writes(cells[region * 2]))]
fn bad_expression(_ctx: ReducerContext, region: u32) {}

fn main() {}

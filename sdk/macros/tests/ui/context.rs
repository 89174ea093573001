use interstice_sdk::*;

#[reducer]
fn no_context(_name: String) {}

#[query]
fn no_return(_ctx: QueryContext) {}

#[query]
fn writes_in_a_query(_ctx: ReducerContext) -> u32 {
    0
}

fn main() {}

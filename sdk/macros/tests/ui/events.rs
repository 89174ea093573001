use interstice_sdk::*;

#[reducer(on = "hello.greetings.upsert")]
fn unknown_event(_ctx: ReducerContext) {}

#[reducer(on = "init")]
fn init_with_args(_ctx: ReducerContext, _extra: u32) {}

#[reducer(on = "other.things.update")]
fn update_with_one_row(_ctx: ReducerContext, _row: u32) {}

fn main() {}

use interstice_sdk::platform::{FrameInfo, InputEvent};
use interstice_sdk::*;

#[reducer(on = "render")]
fn render_with_a_string(_ctx: ReducerContext, _frame: String) {}

#[reducer(on = "render", writes(things))]
fn render_that_writes(_ctx: ReducerContext, _frame: FrameInfo) {}

#[reducer(on = "input")]
fn input_without_the_event(_ctx: ReducerContext) {}

#[reducer(on = "audio_output")]
fn audio_with_an_input_event(_ctx: ReducerContext, _block: InputEvent) {}

#[reducer(on = "rendr")]
fn misspelt(_ctx: ReducerContext) {}

// Queries have no GPU: `ctx.gpu()` is for the Gpu module's reducers and its render hook.
#[query]
fn query_that_draws(ctx: QueryContext) -> u32 {
    let _gpu = ctx.gpu();
    0
}

fn main() {}

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

fn main() {}

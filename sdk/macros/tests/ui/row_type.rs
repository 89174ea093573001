use interstice_sdk::*;

#[table]
pub struct Greetings {
    #[primary_key(auto_inc)]
    id: u64,
    name: String,
}

#[reducer(on = "interstice-sdk-macros-tests.greetings.insert")]
fn on_greeting(_ctx: ReducerContext, _row: String) {}

fn main() {}

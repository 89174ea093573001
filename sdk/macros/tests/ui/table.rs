use interstice_sdk::*;

#[table]
pub struct NoKey {
    name: String,
}

#[table(stateful, ephemeral)]
pub struct TwoModes {
    #[primary_key]
    id: u64,
}

fn main() {}

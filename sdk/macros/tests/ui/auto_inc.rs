use interstice_sdk::*;

#[table]
pub struct Users {
    #[primary_key(auto_inc)]
    email: String,
}

fn main() {}

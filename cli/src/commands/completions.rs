//! `interstice completions <shell>`: a completion script generated from the command line's
//! definition, so it never goes out of date.

use clap::CommandFactory;
use clap_complete::Shell;
use serde_json::json;

use crate::Cli;
use crate::error::Result;
use crate::output::Output;

pub fn print(out: Output, shell: Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "interstice", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    // The script is meant to be redirected into a file: no trailing line of our own.
    if out.json {
        println!("{}", json!({"shell": shell.to_string(), "script": script}));
    } else {
        print!("{script}");
    }
    Ok(())
}

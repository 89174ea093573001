//! Help, `update`, `completions`.

use crate::support::Home;

#[test]
fn every_command_has_help_with_an_example() {
    let home = Home::new();
    for args in [
        vec!["--help"],
        vec!["node", "create", "--help"],
        vec!["node", "start", "--help"],
        vec!["publish", "--help"],
        vec!["call_reducer", "--help"],
        vec!["call_query", "--help"],
        vec!["init", "--help"],
        vec!["example", "--help"],
        vec!["bindings", "add", "node", "--help"],
        vec!["bindings", "add", "module", "--help"],
        vec!["update", "--help"],
        vec!["completions", "--help"],
    ] {
        let out = home.ok(&args);
        assert!(out.contains("Example"), "{args:?}: {out}");
    }
}

#[test]
fn update_installs_from_the_checkout() {
    let home = Home::new();
    let out = home.ok(&["update", "--dry-run"]);
    assert!(out.contains("\"install\" \"--path\""), "{out}");
    assert!(out.contains("cli"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let err = home.fails(2, &["update", "--source", empty.path().to_str().unwrap()]);
    assert!(err.contains("not an Interstice checkout"), "{err}");
}

#[test]
fn completions_cover_the_commands_in_each_shell() {
    let home = Home::new();
    let bash = home.ok(&["completions", "bash"]);
    assert!(bash.contains("complete -F _interstice"), "{bash}");
    assert!(bash.contains("call_reducer"), "{bash}");
    let zsh = home.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef interstice"), "{zsh}");
    assert!(zsh.contains("call_query"), "{zsh}");
    let fish = home.ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c interstice"), "{fish}");
    assert!(fish.contains("completions"), "{fish}");
    let err = home.fails(2, &["completions", "tcsh"]);
    assert!(err.contains("possible values: bash"), "{err}");
}

/// Names become file names (`src/bindings/<module>.toml`, `node_<name>.toml`): a path is
/// refused before anything is asked or written.
#[test]
fn names_that_are_paths_are_refused() {
    let home = Home::new();
    let project = tempfile::tempdir().unwrap();
    let project_arg = project.path().to_str().unwrap();
    for bad in ["../../evil", "/tmp/evil", "a/b", "a b"] {
        let err = home.fails(
            2,
            &["bindings", "add", "module", "nowhere", bad, project_arg],
        );
        assert!(err.contains("not a valid module name"), "{bad}: {err}");
        let err = home.fails(
            2,
            &[
                "bindings",
                "add",
                "node",
                "nowhere",
                project_arg,
                "--name",
                bad,
            ],
        );
        assert!(err.contains("cannot name a node binding"), "{bad}: {err}");
    }
    assert!(!project.path().join("src").exists());
}

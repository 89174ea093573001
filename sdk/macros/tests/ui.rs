//! Mistakes the macros must catch at compile time, with messages that say what to write.
//! Each case's expected diagnostics are in `ui/<case>.stderr`; regenerate them with
//! `TRYBUILD=overwrite cargo test -p interstice-sdk-macros --test ui` and review the diff.

#[test]
fn mistakes_are_reported_where_they_are_written() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

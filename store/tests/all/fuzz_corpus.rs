//! The fuzz target `log_record`'s committed corpus, replayed on every build.

#[test]
fn the_log_record_corpus_replays() {
    let inputs = interstice_abi::fuzzing::corpus("log_record");
    assert!(!inputs.is_empty(), "the corpus is committed");
    for (_, bytes) in inputs {
        interstice_store::fuzzing::recover_log(&bytes);
    }
}

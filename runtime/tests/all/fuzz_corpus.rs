//! The fuzz target `frames`' committed corpus, replayed on every build.

#[test]
fn the_frames_corpus_replays() {
    let inputs = interstice_abi::fuzzing::corpus("frames");
    assert!(!inputs.is_empty(), "the corpus is committed");
    for (_, bytes) in inputs {
        interstice_runtime::net::fuzzing::frames(&bytes);
    }
}

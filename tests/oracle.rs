//! The reply oracle itself: it must accept every correct reply stream and
//! reject the wrong ones, or the other suites prove nothing.

mod support;

use support::check_segments;

/// Any chunking of the input is accepted, including chunks containing the prefix.
#[test]
fn accepts_any_chunking() {
    assert_eq!(check_segments(b"GOT:Hello\n", b"GOT:", b"Hello\n"), Ok(1));
    assert_eq!(check_segments(b"GOT:HelGOT:lo\n", b"GOT:", b"Hello\n"), Ok(2));
    // The data is the prefix itself, echoed in one chunk and in two.
    assert_eq!(check_segments(b"GOT:GOT:", b"GOT:", b"GOT:"), Ok(1));
    assert_eq!(check_segments(b"GOT:GOGOT:T:", b"GOT:", b"GOT:"), Ok(2));
    assert_eq!(check_segments(b"GOT:GOT:GOT:GOT:", b"GOT:", b"GOT:GOT:"), Ok(2));
    assert_eq!(check_segments(b"", b"GOT:", b""), Ok(0));
}

/// A greedy split would fail here: the data contains the prefix mid-chunk.
#[test]
fn needs_backtracking_where_data_contains_the_prefix() {
    let input = b"aGOT:b";
    assert_eq!(check_segments(b"GOT:aGOT:b", b"GOT:", input), Ok(1));
    assert_eq!(check_segments(b"GOT:aGOT:GOT:b", b"GOT:", input), Ok(2));
}

/// Lost, duplicated, reordered or unprefixed bytes are all rejected.
#[test]
fn rejects_wrong_replies() {
    let input = b"Hello\n";
    for wrong in [
        &b"GOT:Hello"[..],         // a byte lost
        b"GOT:Hello\n\n",          // a byte duplicated
        b"GOT:Hello\nGOT:Hello\n", // a chunk echoed twice
        b"GOT:Hlelo\n",            // reordered
        b"Hello\n",                // no prefix
        b"GOT:HelloGOT:\n\n",      // a chunk out of place
        b"GOT:GOT:Hello\n",        // an empty chunk
        b"GOT:Hello\nGOT:",        // a prefix with no chunk
    ] {
        assert!(
            check_segments(wrong, b"GOT:", input).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(wrong)
        );
    }
}

/// With an empty prefix the reply must equal the input.
#[test]
fn empty_prefix_means_identity() {
    assert!(check_segments(b"abc", b"", b"abc").is_ok());
    assert!(check_segments(b"ab", b"", b"abc").is_err());
    assert!(check_segments(b"abd", b"", b"abc").is_err());
}

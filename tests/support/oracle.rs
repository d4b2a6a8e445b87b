//! The reply oracle: does a reply stream echo an input exactly once?
//!
//! A correct server answers each chunk it reads with `prefix + chunk`, but
//! where it cut the input into chunks is its own business, and the data may
//! itself contain the prefix. So a reply cannot be split greedily at each
//! prefix; [`check_segments`] searches every split the bytes allow.

use std::collections::HashSet;

/// Checks that `output` is `prefix + c1 + prefix + c2 + ...` for non-empty
/// chunks `c1, c2, ...` whose concatenation is `input`. Returns the number of
/// segments, or says where the output stops making sense.
pub fn check_segments(output: &[u8], prefix: &[u8], input: &[u8]) -> Result<usize, String> {
    if prefix.is_empty() {
        return match output.iter().zip(input).position(|(a, b)| a != b) {
            None if output.len() == input.len() => Ok(usize::from(!input.is_empty())),
            None => Err(format!("echoed {} bytes of {}", output.len(), input.len())),
            Some(at) => Err(format!("echo differs from the input at byte {at}")),
        };
    }
    if output.is_empty() && input.is_empty() {
        return Ok(0);
    }
    // Depth-first over (output offset, input offset) at segment starts; the
    // number of segments so far follows from the two offsets.
    let mut stack = vec![(0usize, 0usize)];
    let mut seen = HashSet::new();
    let mut furthest = 0;
    while let Some((o, i)) = stack.pop() {
        if !seen.insert((o, i)) {
            continue;
        }
        furthest = furthest.max(o);
        if o == output.len() && i == input.len() {
            return Ok((o - i) / prefix.len());
        }
        if !output[o..].starts_with(prefix) {
            continue;
        }
        let data = o + prefix.len();
        let run = output[data..].iter().zip(&input[i..]).take_while(|(a, b)| a == b).count();
        // Every place the chunk could end: where the next prefix starts, or
        // where both streams end. Shorter ends are pushed first, so the
        // longest is tried first.
        for len in 1..=run {
            let end = data + len;
            let at_end = end == output.len() && i + len == input.len();
            if at_end || output[end..].starts_with(prefix) {
                stack.push((end, i + len));
            }
        }
    }
    let from = furthest.saturating_sub(16);
    let to = (furthest + 16).min(output.len());
    Err(format!(
        "{} output bytes for {} input bytes do not split into prefix + chunk segments; \
         the best split stops at output byte {furthest} (around it: {:?})",
        output.len(),
        input.len(),
        String::from_utf8_lossy(&output[from..to]),
    ))
}

//! Regular expressions as every stage compiles them, with bounded caches.
//!
//! A worker child's heap after every fixture once (`cargo bench --bench
//! memory`) was 30 MiB, nearly all of it regexes: Unicode classes compile
//! to large automata (`\d` and `\w` are hundreds of ranges; a bounded
//! repeat such as `[\p{L} _-]{1,30}` copies its class thirty times: 1.5
//! MiB for one pattern), and each regex keeps a lazy DFA cache of up to 2
//! MiB. The stages' patterns now say `[0-9]` and ASCII-or-any-non-ASCII
//! where they meant that, the rules say `[[:word:]]`, and single regexes
//! keep a smaller cache: 9.8 MiB, with `reprocess` as fast as before.
//! A full cache is cleared and refilled, so a smaller one costs a little
//! time on long texts, never a match.

/// The cache each compiled regex may fill (64 KiB cost `reprocess` 7 %).
pub const CACHE_BYTES: usize = 256 * 1024;
/// The cache of a set (the rules', all their patterns in one automaton),
/// the regex crate's default: with 512 KiB its lazy DFA gave up on the
/// corpus's longer texts and `reprocess` ran at 60 % of its speed (`cargo
/// bench --bench pipeline`); it is one cache, not one per pattern.
pub const SET_CACHE_BYTES: usize = 2 * 1024 * 1024;

/// `pattern`, compiled with [`CACHE_BYTES`].
///
/// # Errors
/// A pattern that does not compile (or is too big to).
pub fn regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .dfa_size_limit(CACHE_BYTES)
        .build()
}

/// `patterns` as one set, compiled with [`SET_CACHE_BYTES`].
///
/// # Errors
/// A pattern that does not compile (or a set too big to).
pub fn regex_set<I, S>(patterns: I) -> Result<regex::RegexSet, regex::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    regex::RegexSetBuilder::new(patterns)
        .dfa_size_limit(SET_CACHE_BYTES)
        .build()
}

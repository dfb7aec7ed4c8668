//! The customTag rule, word for word as `harness/orders/validation.py` states it: a non-empty
//! string of at most 128 characters (the width of `outcomes.custom_tag`, the column the fallback
//! reconciles by), holding no control character and no lone surrogate (which cannot be sent as
//! UTF-8). The API documents no limit; the harness holds tags to what it can keep and find.

/// Longest customTag, in characters (Unicode code points, as Python's `len`).
pub const MAX_CHARS: usize = 128;
/// The reason of a tag that is not a non-empty string.
pub const NOT_A_TAG: &str = "must be a non-empty string";
/// The reason of a tag holding a control character or a lone surrogate.
pub const NOT_TEXT: &str = "must not hold control characters or lone surrogates";
/// How many leading characters of a tag too long its error shows (then `...`).
pub const SHOWN_CHARS: usize = 20;

/// The reason of a tag of `chars` characters, more than `MAX_CHARS`.
pub fn too_long(chars: usize) -> String {
    format!("must be at most {MAX_CHARS} characters, not {chars}")
}

/// Whether `text` holds a control character: U+0000..U+001F or U+007F..U+009F (Unicode's
/// general category Cc, which is what `char::is_control` tests).
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_c0_del_and_c1_only() {
        for c in ['\0', '\t', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            assert!(has_control(&format!("hx-{c}")), "{:?}", c);
        }
        for c in [' ', '~', '\u{a0}', 'é', '\u{200b}', '\u{2028}', '\u{fffd}'] {
            assert!(!has_control(&format!("hx-{c}")), "{:?}", c);
        }
    }

    #[test]
    fn the_length_reason_names_the_limit_and_the_length() {
        assert_eq!(too_long(129), "must be at most 128 characters, not 129");
    }
}

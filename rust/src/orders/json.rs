//! Request bodies written byte for byte as the Python client writes them.
//!
//! The Python client sends `json.dumps(body, separators=(",", ":"))`: compact, ASCII only
//! (every other character as `\uXXXX`, lower-case hex, a character beyond the BMP as its UTF-16
//! surrogate pair), floats as Python's `repr` prints them (`21000.25`, `1e+16`, `1e-05`). This
//! is serde_json with a `Formatter` that writes floats and strings that way, so both sides
//! build the same bytes for the same arguments (the shadow compares them; a test holds it).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// `value` as the Python client's JSON bytes (`json.dumps(value, separators=(",", ":"))`).
///
/// serde_json writes a NaN or an infinity as `null`; a price field that must never go out so
/// is serialized with `finite` instead, which refuses it as Python's `allow_nan=False` does
/// (the argument checks keep them out before that).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// `serialize_with` for a price: a finite float as Python prints it, `None` as null, and a NaN
/// or an infinity an error (never `null`, which the broker would read as "no price").
pub fn finite<S: serde::Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if !v.is_finite() => Err(serde::ser::Error::custom(
            "out of range float values are not JSON compliant",
        )),
        Some(v) => serializer.serialize_f64(*v),
        None => serializer.serialize_none(),
    }
}

/// serde_json's compact formatter with Python's floats and ASCII-only strings.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if !value.is_finite() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "out of range float values are not JSON compliant",
            ));
        }
        writer.write_all(python_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json escapes the quote, the backslash and the controls below 0x20 itself (the
        // same escapes as Python's); everything else outside printable ASCII is ours to escape.
        // Bodies are ASCII almost always: one pass over the bytes finds that out.
        let bytes = fragment.as_bytes();
        let Some(first) = bytes.iter().position(|b| !(b' '..=b'~').contains(b)) else {
            return writer.write_all(bytes);
        };
        writer.write_all(&bytes[..first])?;
        let mut plain = first;
        for (i, c) in fragment[first..].char_indices() {
            let i = first + i;
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&bytes[plain..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            plain = i + c.len_utf8();
        }
        writer.write_all(&bytes[plain..])
    }
}

/// A finite float as Python's `repr` prints it: the shortest digits that read back as the
/// same double (Rust and Python pick the same ones), positional from 1e-4 up to below 1e16
/// with at least one fractional digit (`100.0`), else `d.ddde+XX` with a signed exponent of at
/// least two digits (`1e+16`, `2.5e-07`).
pub fn python_repr(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // `{:e}` prints the shortest round-trip digits: `-2.100025e4`, `1e16`, `5e-5`.
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{dot}{rest}e{exp_sign}{:02}",
            exponent.unsigned_abs()
        );
    }
    if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let whole_len = exponent as usize + 1;
    if digits.len() <= whole_len {
        let zeros = "0".repeat(whole_len - digits.len());
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (whole, fraction) = digits.split_at(whole_len);
        format!("{sign}{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (value, python) in [
            (21000.25, "21000.25"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.3, "0.3"),
            (2621.9, "2621.9"),
            (1.09055, "1.09055"),
            (-3.75, "-3.75"),
            (0.0001, "0.0001"),
            (0.00005, "5e-05"),
            (1e-7, "1e-07"),
            (2.5e-7, "2.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9007199254740993.0, "9007199254740992.0"),
        ] {
            assert_eq!(python_repr(value), python, "{value:e}");
        }
    }

    #[test]
    fn strings_are_ascii_with_python_escapes() {
        let text = "a\"b\\c\n\t\u{1}\u{7f}é€😀/";
        let bytes = to_vec(text).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#""a\"b\\c\n\t\u0001\u007f\u00e9\u20ac\ud83d\ude00/""#
        );
    }

    #[test]
    fn bodies_are_compact_and_non_finite_floats_are_refused() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            account_id: i64,
            #[serde(serialize_with = "finite")]
            limit_price: Option<f64>,
            #[serde(serialize_with = "finite")]
            stop_price: Option<f64>,
        }
        let body = Body {
            account_id: 1001,
            limit_price: Some(1e16),
            stop_price: None,
        };
        assert_eq!(
            to_vec(&body).unwrap(),
            br#"{"accountId":1001,"limitPrice":1e+16,"stopPrice":null}"#
        );
        let nan = Body {
            limit_price: Some(f64::NAN),
            ..body
        };
        assert!(to_vec(&nan).is_err());
    }
}

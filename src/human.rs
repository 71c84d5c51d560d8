//! Quantities written for people: durations in progress lines, estimates and reports.

/// `1h 02m`, `7m 05s`, `12s`, `under 1s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, 0) if seconds > 0.0 => "under 1s".into(),
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// Seconds to three significant digits, for per-step times that can be milliseconds:
/// `1.23 s`, `0.00412 s`, `123 s`.
pub fn seconds(seconds: f64) -> String {
    if !(seconds.is_finite() && seconds > 0.0) {
        return format!("{seconds:.2} s");
    }
    let decimals = (2 - seconds.log10().floor() as i32).clamp(0, 9) as usize;
    format!("{seconds:.decimals$} s")
}

/// A serde error in a researcher's words: Rust's type names become what to write.
pub fn settings_error(message: &str) -> String {
    const PLAIN: [(&str, &str); 14] = [
        (
            "data did not match any variant of untagged enum StepsOrFraction",
            "expected a number of steps (a whole number, 10), a fraction of the run (0.1), or #{ steps: N } / #{ fraction: x }",
        ),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a string (in quotes)"),
        (", there are no fields", ": this kind has no other settings"),
        ("floating point `", "number `"),
    ];
    let message = PLAIN.iter().fold(message.to_string(), |m, (rust, plain)| m.replace(rust, plain));
    // `expected internally tagged enum LrLayout`: the rest of the message is the type's name.
    match message.find("expected internally tagged enum") {
        Some(at) => format!("{}expected a map with a `kind` key", &message[..at]),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(super::duration(12.4), "12s");
        assert_eq!(super::duration(425.0), "7m 05s");
        assert_eq!(super::duration(3720.0), "1h 02m");
        assert_eq!(super::duration(-1.0), "0s");
        assert_eq!(super::duration(0.0), "0s");
        assert_eq!(super::duration(0.3), "under 1s");
    }

    #[test]
    fn settings_errors_name_what_to_write_not_rust_types() {
        assert_eq!(super::settings_error("invalid value: integer `-4`, expected usize"), "invalid value: integer `-4`, expected a whole number, 0 or more");
        assert_eq!(super::settings_error("invalid type: string \"1\", expected u64"), "invalid type: string \"1\", expected a whole number, 0 or more");
        assert!(super::settings_error("data did not match any variant of untagged enum StepsOrFraction").starts_with("expected a number of steps"));
        assert_eq!(super::settings_error("invalid type: string \"x\", expected internally tagged enum LrLayout"), "invalid type: string \"x\", expected a map with a `kind` key");
        assert_eq!(super::settings_error("invalid value: integer `70000`, expected u16"), "invalid value: integer `70000`, expected a whole number from 0 to 65535");
        assert_eq!(super::settings_error("unknown field `delta`, there are no fields"), "unknown field `delta`: this kind has no other settings");
    }

    #[test]
    fn short_times_keep_three_significant_digits() {
        assert_eq!(super::seconds(1.234), "1.23 s");
        assert_eq!(super::seconds(0.004123), "0.00412 s");
        assert_eq!(super::seconds(123.4), "123 s");
        assert_eq!(super::seconds(0.0), "0.00 s");
    }
}

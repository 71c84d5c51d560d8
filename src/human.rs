//! Quantities written for people: durations in progress lines, estimates and reports.

/// `1h 02m`, `7m 05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
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
    }
}

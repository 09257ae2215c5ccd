//! Value types of attributes, event columns and traits, and time-window durations.

use std::fmt;
use std::str::FromStr;

/// Microseconds in one hour.
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
/// Microseconds in one day (24 hours; segmenta has no calendar days with leap seconds).
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The logical type of an attribute, event column, trait or literal.
///
/// Timestamps are instants in UTC with microsecond precision; dates are calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// `true` / `false`.
    Bool,
    /// A calendar day.
    Date,
    /// An instant (UTC, microseconds).
    Timestamp,
}

impl ValueType {
    /// The names accepted in `columns = { ... }` overrides, in documentation order.
    pub const NAMES: [&'static str; 6] = ["string", "int", "float", "bool", "date", "timestamp"];

    /// True for `int` and `float`.
    pub fn is_numeric(self) -> bool {
        matches!(self, ValueType::Int | ValueType::Float)
    }

    /// True for `date` and `timestamp`.
    pub fn is_temporal(self) -> bool {
        matches!(self, ValueType::Date | ValueType::Timestamp)
    }

    /// The name used in configuration and messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Date => "date",
            ValueType::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ValueType {
    type Err = String;

    /// Parses a type name; the error is a message listing the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "string" | "str" | "text" | "utf8" => Ok(ValueType::String),
            "int" | "integer" | "int64" | "bigint" => Ok(ValueType::Int),
            "float" | "double" | "float64" | "number" => Ok(ValueType::Float),
            "bool" | "boolean" => Ok(ValueType::Bool),
            "date" => Ok(ValueType::Date),
            "timestamp" | "datetime" => Ok(ValueType::Timestamp),
            _ => Err(format!("unknown type `{s}`; use one of {}", ValueType::NAMES.join(", "))),
        }
    }
}

/// The unit CLV models are fitted in (`[clv] time_unit`): recency, the customer's age and the
/// horizon are counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    /// `day`.
    Day,
    /// `week`, the default.
    #[default]
    Week,
}

impl TimeUnit {
    /// The name used in configuration and reports.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TimeUnit {
    type Err = String;

    /// Parses `day` or `week` (exactly); the error is a message naming the text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(TimeUnit::Day),
            "week" => Ok(TimeUnit::Week),
            _ => Err(format!("`{s}` is not a time unit")),
        }
    }
}

/// The unit of a trait window (`Nh`, `Nd`, `Nw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// `h`: hours.
    Hour,
    /// `d`: days of 24 hours.
    Day,
    /// `w`: weeks of 7 days.
    Week,
}

/// A trait window such as `90d`: events with `ts >= as_of - window` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: WindowUnit,
}

impl Window {
    /// The window's length in microseconds.
    pub fn micros(self) -> i64 {
        let unit = match self.unit {
            WindowUnit::Hour => MICROS_PER_HOUR,
            WindowUnit::Day => MICROS_PER_DAY,
            WindowUnit::Week => 7 * MICROS_PER_DAY,
        };
        i64::from(self.amount) * unit
    }
}

/// How to write a window, for hints.
pub const WINDOW_HINT: &str = "write a whole number followed by h, d or w, e.g. 90d";

impl FromStr for Window {
    type Err = String;

    /// Parses `Nh`, `Nd` or `Nw` (the unit case-insensitive). The error is a message naming the
    /// text; [`WINDOW_HINT`] says how to write one.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid window `{text}`");
        let Some(unit) = text.chars().last() else { return Err(invalid()) };
        let digits = &text[..text.len() - unit.len_utf8()];
        let unit = match unit.to_ascii_lowercase() {
            'h' => WindowUnit::Hour,
            'd' => WindowUnit::Day,
            'w' => WindowUnit::Week,
            _ if text.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!("window `{text}` has no unit"));
            }
            _ => return Err(invalid()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let too_long = || format!("window `{text}` is too long");
        let amount: u32 = digits.parse().map_err(|_| too_long())?;
        if amount == 0 {
            return Err(format!("window `{text}` is empty"));
        }
        let window = Window { amount, unit };
        let unit_micros = Window { amount: 1, unit }.micros();
        if i64::from(amount).checked_mul(unit_micros).is_none() {
            return Err(too_long());
        }
        Ok(window)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            WindowUnit::Hour => 'h',
            WindowUnit::Day => 'd',
            WindowUnit::Week => 'w',
        };
        write!(f, "{}{}", self.amount, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lengths() {
        let w = Window { amount: 2, unit: WindowUnit::Week };
        assert_eq!(w.micros(), 14 * MICROS_PER_DAY);
        assert_eq!(w.to_string(), "2w");
        let h = Window { amount: 36, unit: WindowUnit::Hour };
        assert_eq!(h.micros(), 36 * MICROS_PER_HOUR);
    }

    #[test]
    fn windows_parse() {
        let check = |text: &str, expected: Result<&str, &str>| {
            let parsed = text.parse::<Window>().map(|w| w.to_string());
            assert_eq!(parsed.as_deref().map_err(String::as_str), expected, "{text}");
        };
        check("90d", Ok("90d"));
        check("12W", Ok("12w"));
        check("36h", Ok("36h"));
        check("0d", Err("window `0d` is empty"));
        check("90", Err("window `90` has no unit"));
        check("90y", Err("invalid window `90y`"));
        check("d", Err("invalid window `d`"));
        check("", Err("invalid window ``"));
        check("1.5d", Err("invalid window `1.5d`"));
        check("99999999999d", Err("window `99999999999d` is too long"));
        check("4294967295w", Err("window `4294967295w` is too long"));
    }

    #[test]
    fn type_names_round_trip() {
        for name in ValueType::NAMES {
            let ty: ValueType = name.parse().expect("documented names parse");
            assert_eq!(ty.name(), name);
        }
        assert!("varchar2".parse::<ValueType>().is_err());
    }
}

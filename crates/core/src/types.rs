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
    fn type_names_round_trip() {
        for name in ValueType::NAMES {
            let ty: ValueType = name.parse().expect("documented names parse");
            assert_eq!(ty.name(), name);
        }
        assert!("varchar2".parse::<ValueType>().is_err());
    }
}

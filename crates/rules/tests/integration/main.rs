//! Property tests of the rule and trait languages.

mod properties;

//! Integration tests of segmenta-ml: one test binary, a module per area.

mod cluster;
mod clv;

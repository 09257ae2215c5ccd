//! Reading entity and event files into typed Arrow data: schema discovery (header plus
//! inference plus overrides), row validation with precise locations, and rejects.
//!
//! API (implemented by the ingest modules):
//! - [`SourceSpec`]: which file, its format, the type overrides.
//! - [`read_schema`]: the typed schema, reading only the header and a sample (used by
//!   `validate` before any data is scanned).
//! - [`load_table`]: every row, typed, with rejected rows set aside.

//! The store's integration tests, one test binary: `formats` holds every persisted format
//! version to its fixture under `test-data/`.

mod formats;

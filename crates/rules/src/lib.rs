//! The segmenta rule and trait languages: lexer, parser, syntax trees, resolution against a
//! catalog of typed attributes, diagnostics, and a reference evaluator.
//!
//! This crate knows nothing of DataFusion or of files: it turns text into a resolved, typed
//! rule, learning attribute names and types through the [`AttributeCatalog`] trait.
//!
//! GRAMMAR_PLACEHOLDER
#![warn(missing_docs)]

pub mod ast;

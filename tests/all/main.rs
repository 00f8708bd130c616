//! The integration tests, one binary with a module per concern.

mod support;

//! The integration tests, one binary with a module per concern.

mod cache;
mod emulator;
mod errors;
mod faults;
mod hosts;
mod jwt_backend;
mod mint;
mod params;
mod properties;
mod redirect;
mod routing;
mod schemes;
mod secrets;
mod soak;
mod support;
mod unauthorized;

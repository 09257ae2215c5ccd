//! The server's tests: the real router in-process on a temporary store (every endpoint, every
//! role, bad requests), its OpenAPI document against its routes, and its request log.

mod api;
mod events;
mod logs;
mod support;

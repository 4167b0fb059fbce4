//! The real binary, as a newcomer and an operator use it.

mod audit;
mod datasets;
mod helpers;
mod pii;
mod server;

//! Identity and access: workspaces, users, roles, API keys, passwords, tokens, login.

mod admin;
mod model;
pub mod password;
mod principal;
mod service;
mod sessions;
pub mod throttle;
pub mod tokens;
mod users;

pub use model::*;
pub use principal::{Principal, PrincipalKind};
pub use service::{
    Bootstrapped, CreateUserInput, IdentityConfig, IdentityService, LoginRequest, TokenPair,
};

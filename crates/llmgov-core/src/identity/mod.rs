//! Identity and access: workspaces, users, roles, API keys, passwords, tokens, login.

mod model;
pub mod password;
mod principal;
mod service;
pub mod throttle;
pub mod tokens;

pub use model::*;
pub use principal::{Principal, PrincipalKind};
pub use service::{
    Bootstrapped, CreateUserInput, IdentityConfig, IdentityService, LoginRequest, TokenPair,
};

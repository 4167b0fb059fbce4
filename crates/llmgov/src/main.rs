//! `llmgov`: server and CLI in one binary. This file only parses arguments and dispatches.

mod audit_cli;
mod cli;
mod commands;
mod config;
mod dataset_cli;
mod demo;
mod pii_cli;

use clap::Parser;

/// mimalloc: the request path allocates many small, short-lived objects across threads,
/// where it measured faster than glibc's allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

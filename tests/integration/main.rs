//! The integration tests, in one binary: the engine through the runtime on real SQLite files,
//! the app over loopback HTTP, the AWS-compatible API with the real SDKs, and the binary
//! killed mid-flight. One binary links once and takes a tenth of the disk that one
//! binary per file did.

mod common;

mod api;
mod branches;
mod console;
mod crash;
mod inbox;
mod jsonata;
mod observability;
mod pages;
mod recorded;
mod runtime;
mod security_accounts;
mod security_approval;
mod security_engine;
mod security_http;
mod security_worker;
mod sfn;
mod variables;

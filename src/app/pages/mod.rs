//! One module per area of the site.

pub mod admin;
pub mod dashboard;
pub mod executions;
pub mod inbox;
pub mod keys;
pub mod login;
pub mod order;
pub mod shop;
pub mod users;

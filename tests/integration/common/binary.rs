//! The real binary as a child process, for what only a whole process shows: a `kill -9`, the
//! process-wide metrics, trace export configured by environment variables.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_orderflow");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command of the binary on database `db` with `stdin`; asserts it succeeded and
/// returns its standard output.
pub fn cli(db: &str, args: &[&str], stdin: &str) -> String {
    let out = cli_output(db, args, stdin);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    assert!(
        out.status.success(),
        "orderflow {args:?} failed: {}",
        text(out.stderr)
    );
    text(out.stdout)
}

/// Runs a command of the binary on database `db` with `stdin`, whatever its outcome.
pub fn cli_output(db: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", db)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub async fn start(db: &str, port: u16) -> Child {
    start_with(db, port, &[]).await
}

/// [`start`] with more environment variables.
pub async fn start_with(db: &str, port: u16, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(BIN)
        .envs(env.iter().copied())
        .env("DATABASE_URL", db)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if r.status().is_success() {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not come up");
}

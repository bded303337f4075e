//! Any bytes as a definition (and, after a NUL byte, an input): parsing must refuse or accept
//! without panicking, and an accepted machine must run to an end within its step budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow::engine::{drive::drive, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (definition, input) = text.split_once('\0').unwrap_or((text, "{}"));
    if let Ok(machine) = parse(definition) {
        let input = serde_json::from_str(input).unwrap_or(serde_json::Value::Null);
        let mut budget = 500;
        let _ = drive(&machine, input, &mut budget);
    }
});

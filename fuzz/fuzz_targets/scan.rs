//! Any bytes: the scanner never panics and its offsets fall on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    llmgov_pii::properties::check_scan(&text);
});

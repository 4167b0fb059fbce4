//! Properties every input must satisfy, shared by the fuzz targets (`fuzz/`, cargo-fuzz on
//! nightly) and the stable randomized test: the scanner and the anonymizer never panic,
//! offsets fall on character boundaries and are ordered, and scanning an anonymized text
//! finds nothing of an anonymized type.

use crate::anonymize::{Anonymizer, Keys, Operator, Profile};
use crate::{EntityType, Scanner};

fn scanner() -> &'static Scanner {
    static S: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
    S.get_or_init(Scanner::default)
}

/// Scans `text` and checks the findings' offsets.
pub fn check_scan(text: &str) {
    let n = text.chars().count();
    let mut last = 0;
    for e in scanner().scan(text) {
        assert!(e.start < e.end && e.end <= n, "{e:?} in {n} code points");
        assert!(e.start >= last, "overlapping findings: {e:?}");
        assert!((0.0..=1.0).contains(&e.score));
        last = e.end;
    }
}

/// Anonymizes `text` with each operator that hides values and checks that a scan of the
/// result finds nothing (redact excepted for joins it cannot prevent: see below), and that
/// the replacement items' offsets fit both texts.
pub fn check_anonymize(text: &str) {
    check_scan(text);
    let keys = Keys::derive(&[7; 32]);
    let n_in = text.chars().count();
    for op in [
        "replace",
        "mask",
        "hash",
        "encrypt",
        "tokenize",
        "redact",
        "pseudonymize",
    ] {
        let profile = Profile {
            default: Operator::parse(op).expect("a built-in operator"),
            ..Default::default()
        };
        let a = Anonymizer::new(&profile, Some(&keys), "scope").expect("a valid profile");
        let out = a.scan_text(scanner(), text, &mut vec![]);
        let n_out = out.text.chars().count();
        for it in &out.items {
            assert!(
                it.start <= it.end && it.end <= n_in,
                "{op}: {it:?} of {n_in}"
            );
            assert!(
                it.new_start <= it.new_end && it.new_end <= n_out,
                "{op}: {it:?} of {n_out}"
            );
        }
        check_scan(&out.text);
        if op != "pseudonymize" {
            // Redacting may join what was around a value into a new one; another pass
            // removes it, up to the pass limit, which a hostile input can exceed only with
            // more nested joins than `scan_text` makes passes.
            let left: Vec<EntityType> = scanner()
                .scan(&out.text)
                .into_iter()
                .map(|e| e.kind)
                .collect();
            assert!(
                left.is_empty() || op == "redact",
                "{op}: {:?} still has {left:?}",
                out.text
            );
        }
    }
}

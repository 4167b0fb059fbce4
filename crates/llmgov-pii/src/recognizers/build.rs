//! The built-in patterns, compiled once per scanner.

use regex_automata::MatchKind;
use regex_automata::dfa::dense;

use super::Recognizers;
use super::keywords::WORDS;
use super::text::{dfa, meta, re};

impl Recognizers {
    pub fn new() -> Self {
        let secrets = vec![
            (
                "aws_access_key",
                meta(r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}(?-u:\b)"),
                0.95,
            ),
            (
                "github_token",
                meta(
                    r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?-u:\b)",
                ),
                0.95,
            ),
            (
                "slack_token",
                meta(r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,250}"),
                0.95,
            ),
            (
                "stripe_key",
                meta(r"(?-u:\b)(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,247}(?-u:\b)"),
                0.95,
            ),
            (
                "google_api_key",
                meta(r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}"),
                0.95,
            ),
            (
                "openai_key",
                meta(r"(?-u:\b)sk-(?:proj-|ant-(?:api03-)?)?[A-Za-z0-9_\-]{20,200}"),
                0.9,
            ),
            (
                "sendgrid_key",
                meta(r"(?-u:\b)SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?-u:\b)"),
                0.95,
            ),
            (
                "twilio_key",
                meta(r"(?-u:\b)SK[0-9a-fA-F]{32}(?-u:\b)"),
                0.8,
            ),
            (
                "jwt",
                meta(r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
                0.95,
            ),
            (
                "private_key_block",
                meta(
                    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{16,}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
                ),
                0.99,
            ),
            (
                "azure_storage_key",
                meta(r"AccountKey=[A-Za-z0-9+/]{86}=="),
                0.95,
            ),
        ];
        Self {
            email: meta(
                r"(?i)(?-u:\b)[a-z0-9](?:[a-z0-9._%+\-]{0,63})@[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(?-u:\b)",
            ),
            // Digits are ASCII digits: other scripts' digits are not validated as numbers.
            card: dfa(r"[0-9](?:[ \-]?[0-9]){12,18}"),
            ssn: dfa(r"(?-u:\b)[0-9]{3}[\- ][0-9]{2}[\- ][0-9]{4}(?-u:\b)"),
            ssn_bare: dfa(r"(?-u:\b)[0-9]{9}(?-u:\b)"),
            ipv4: dfa(
                r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?-u:\b)",
            ),
            ipv6: meta(
                r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?::(?:[0-9]{1,3}\.){3}[0-9]{1,3})?",
            ),
            iban: dfa(r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
            phone_nanp: dfa(
                r"(?:\+?1[ .\-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}",
            ),
            // A country code, then maybe the trunk `(0)` some countries write after it.
            phone_intl: dfa(
                r"\+[0-9]{1,3}(?:[ .\-]?\(0\)[0-9]{1,10})?(?:[ .\-]\(?[0-9]{1,10}\)?){1,5}",
            ),
            // A national number with its trunk prefix (`020 7946 0123`, `030-1234-5678`).
            phone_trunk: dfa(r"(?-u:\b)0[1-9][0-9]{0,3}(?:[ .\-][0-9]{2,8}){1,4}(?-u:\b)"),
            url: meta(r#"(?i)(?-u:\b)(?:https?|ftp)://[^\s<>"'`()\[\]{}]+"#),
            mac: meta(r"(?i)(?-u:\b)[0-9a-f]{2}(?:[:\-][0-9a-f]{2}){5}(?-u:\b)"),
            secrets,
            assignment: meta(
                r#"(?i)(?:[a-z0-9_\-\.]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth|credential|private[_\-]?key)[a-z0-9_\-]*)["']?\s*[:=]\s*["']?(?:[^\s"'`,;]{8,256})"#,
            ),
            bearer: meta(r"(?i)(?-u:\b)bearer\s+[A-Za-z0-9\-._~+/]{16,}=*"),
            // A house number, one to three capitalised words and a street suffix, then
            // optionally a unit, a city, a state and a ZIP code (US style).
            address: meta(
                r"(?-u:\b)[0-9]{1,6}[A-Z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?(?:\p{Lu}[\p{Ll}]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Drive|Dr|Boulevard|Blvd|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Row|Crescent|Close)(?-u:\b)\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|#)\.?\s*[A-Za-z0-9\-]+)?(?:,\s*\p{Lu}[\p{Ll}]+(?:\s\p{Lu}[\p{Ll}]+){0,2},?\s+[A-Z]{2}\s+[0-9]{5}(?:-[0-9]{4})?)?",
            ),
            dob: re(
                r"(?i)(?-u:\b)(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?,?\s+\d{4})(?-u:\b)",
            ),
            passport: re(r"(?-u:\b)[A-Z]?\d{8,9}(?-u:\b)"),
            driver_license: re(
                r"(?-u:\b)(?:[A-Z]{1,2}\d{5,13}|[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d|[A-Z]\d{3}-\d{4}-\d{4}|\d{3}-\d{3}-\d{3}|\d{7,12})(?-u:\b)",
            ),
            nhs: dfa(r"(?-u:\b)[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{4}(?-u:\b)"),
            words: dense::Builder::new()
                .configure(
                    dense::Config::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .start_kind(regex_automata::dfa::StartKind::Unanchored),
                )
                .syntax(
                    regex_automata::util::syntax::Config::new()
                        .unicode(false)
                        .utf8(false)
                        .case_insensitive(true),
                )
                .build_many(&WORDS.iter().map(|w| regex::escape(w.0)).collect::<Vec<_>>())
                .expect("valid literals"),
        }
    }
}

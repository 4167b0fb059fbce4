//! Context keywords and secret prefixes: one DFA pass per record finds them, and
//! says which keyword-guarded recognizers and which secret patterns can match.

/// Which context keywords and secret prefixes a record holds.
#[derive(Default)]
pub(super) struct Keywords {
    /// `KW_*` bits.
    pub keywords: u8,
    /// Where the prefixes of secret patterns start (exact case), with the pattern's
    /// index, ascending: every match of a secret pattern starts at one.
    pub secrets: Vec<(u8, usize)>,
    /// Where the word `bearer` (any case) starts, ascending.
    pub bearer: Vec<usize>,
    /// Where the keywords of `key = value` secrets start, ascending.
    pub assign: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Word {
    Keyword(u8),
    /// The index of the secret pattern the prefix belongs to.
    Secret(u8),
}

/// Context keywords (any case) and the literal prefixes of the secret patterns (exact
/// case), found together in one pass.
pub(super) const WORDS: &[(&str, Word)] = &[
    ("password", Word::Keyword(KW_ASSIGN)),
    ("passwd", Word::Keyword(KW_ASSIGN)),
    ("pwd", Word::Keyword(KW_ASSIGN)),
    ("secret", Word::Keyword(KW_ASSIGN)),
    ("token", Word::Keyword(KW_ASSIGN)),
    ("api_key", Word::Keyword(KW_ASSIGN)),
    ("api-key", Word::Keyword(KW_ASSIGN)),
    ("apikey", Word::Keyword(KW_ASSIGN)),
    ("access_key", Word::Keyword(KW_ASSIGN)),
    ("access-key", Word::Keyword(KW_ASSIGN)),
    ("accesskey", Word::Keyword(KW_ASSIGN)),
    ("auth", Word::Keyword(KW_ASSIGN)),
    ("credential", Word::Keyword(KW_ASSIGN)),
    ("private_key", Word::Keyword(KW_ASSIGN)),
    ("private-key", Word::Keyword(KW_ASSIGN)),
    ("privatekey", Word::Keyword(KW_ASSIGN)),
    ("bearer", Word::Keyword(KW_BEARER)),
    ("born", Word::Keyword(KW_BIRTH)),
    ("dob", Word::Keyword(KW_BIRTH)),
    ("d.o.b", Word::Keyword(KW_BIRTH)),
    ("birth", Word::Keyword(KW_BIRTH)),
    ("passport", Word::Keyword(KW_PASSPORT)),
    ("license", Word::Keyword(KW_LICENSE)),
    ("licence", Word::Keyword(KW_LICENSE)),
    ("dl#", Word::Keyword(KW_LICENSE)),
    ("dl no", Word::Keyword(KW_LICENSE)),
    ("dl number", Word::Keyword(KW_LICENSE)),
    ("lic#", Word::Keyword(KW_LICENSE)),
    ("nhs", Word::Keyword(KW_NHS)),
    ("health service", Word::Keyword(KW_NHS)),
    ("patient number", Word::Keyword(KW_NHS)),
    ("ssn", Word::Keyword(KW_SSN)),
    ("social sec", Word::Keyword(KW_SSN)),
    ("AKIA", Word::Secret(0)),
    ("ASIA", Word::Secret(0)),
    ("AGPA", Word::Secret(0)),
    ("AIDA", Word::Secret(0)),
    ("AROA", Word::Secret(0)),
    ("ghp_", Word::Secret(1)),
    ("gho_", Word::Secret(1)),
    ("ghu_", Word::Secret(1)),
    ("ghs_", Word::Secret(1)),
    ("ghr_", Word::Secret(1)),
    ("github_pat_", Word::Secret(1)),
    ("xoxa-", Word::Secret(2)),
    ("xoxb-", Word::Secret(2)),
    ("xoxp-", Word::Secret(2)),
    ("xoxo-", Word::Secret(2)),
    ("xoxs-", Word::Secret(2)),
    ("xoxr-", Word::Secret(2)),
    ("sk_live_", Word::Secret(3)),
    ("sk_test_", Word::Secret(3)),
    ("rk_live_", Word::Secret(3)),
    ("rk_test_", Word::Secret(3)),
    ("pk_live_", Word::Secret(3)),
    ("pk_test_", Word::Secret(3)),
    ("AIza", Word::Secret(4)),
    ("sk-", Word::Secret(5)),
    ("SG.", Word::Secret(6)),
    ("SK", Word::Secret(7)),
    ("eyJ", Word::Secret(8)),
    ("-----BEGIN", Word::Secret(9)),
    ("AccountKey=", Word::Secret(10)),
];

pub(super) const KW_ASSIGN: u8 = 1;
pub(super) const KW_BEARER: u8 = 2;
pub(super) const KW_BIRTH: u8 = 4;
pub(super) const KW_PASSPORT: u8 = 8;
pub(super) const KW_LICENSE: u8 = 16;
pub(super) const KW_NHS: u8 = 32;
pub(super) const KW_SSN: u8 = 64;

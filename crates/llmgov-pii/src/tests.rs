use super::*;

fn found(text: &str) -> Vec<(EntityType, String)> {
    let chars: Vec<char> = text.chars().collect();
    Scanner::default()
        .scan(text)
        .into_iter()
        .map(|e| (e.kind, chars[e.start..e.end].iter().collect()))
        .collect()
}

/// The values of the entities of one type in `text`.
fn of(text: &str, kind: EntityType) -> Vec<String> {
    found(text)
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, v)| v)
        .collect()
}

fn has(text: &str, kind: EntityType, value: &str) {
    let f = found(text);
    assert!(
        f.iter().any(|(k, v)| *k == kind && v == value),
        "{kind:?} {value:?} not found in {text:?}: {f:?}"
    );
}

fn none_of(text: &str, kind: EntityType) {
    let f = found(text);
    assert!(
        !f.iter().any(|(k, _)| *k == kind),
        "{kind:?} in {text:?}: {f:?}"
    );
}

#[test]
fn validated_identifiers_are_found() {
    has(
        "mail me at jane.doe+x@example.co.uk, thanks",
        EntityType::EMAIL_ADDRESS,
        "jane.doe+x@example.co.uk",
    );
    has(
        "card 4111 1111 1111 1111 exp 12/27",
        EntityType::CREDIT_CARD,
        "4111 1111 1111 1111",
    );
    has(
        "amex 3782-822463-10005",
        EntityType::CREDIT_CARD,
        "3782-822463-10005",
    );
    has("my ssn is 123-45-6789.", EntityType::US_SSN, "123-45-6789");
    has(
        "from 192.168.10.254 at noon",
        EntityType::IP_ADDRESS,
        "192.168.10.254",
    );
    has(
        "peer 2001:db8::8a2e:370:7334 up",
        EntityType::IP_ADDRESS,
        "2001:db8::8a2e:370:7334",
    );
    has(
        "IBAN DE89 3704 0044 0532 0130 00 please",
        EntityType::IBAN_CODE,
        "DE89 3704 0044 0532 0130 00",
    );
    has(
        "to GB82WEST12345698765432.",
        EntityType::IBAN_CODE,
        "GB82WEST12345698765432",
    );
    has(
        "call (415) 555-2671 now",
        EntityType::PHONE_NUMBER,
        "(415) 555-2671",
    );
    has(
        "ring +44 20 7946 0958 today",
        EntityType::PHONE_NUMBER,
        "+44 20 7946 0958",
    );
    has(
        "btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 ok",
        EntityType::CRYPTO,
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    );
    has(
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        EntityType::CRYPTO,
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    );
    has(
        "send to 0x52908400098527886E0F7030069857D2E4169EE7",
        EntityType::CRYPTO,
        "0x52908400098527886E0F7030069857D2E4169EE7",
    );
    has(
        "nic 00:1A:2B:3C:4D:5E",
        EntityType::MAC_ADDRESS,
        "00:1A:2B:3C:4D:5E",
    );
    has(
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        EntityType::SECRET,
        "AKIAIOSFODNN7EXAMPLE",
    );
    has(
        "token: ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        EntityType::SECRET,
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    );
    has(
        "db_password = 'Xk3$9vLq2!mZ'",
        EntityType::SECRET,
        "Xk3$9vLq2!mZ",
    );
}

#[test]
fn look_alikes_are_not_reported() {
    none_of("card 4111 1111 1111 1112", EntityType::CREDIT_CARD); // bad Luhn
    none_of("masked **** **** **** 4242", EntityType::CREDIT_CARD);
    none_of("order 0000 0000 0000 0000", EntityType::CREDIT_CARD);
    none_of(
        "ssn 000-12-3456 and 666-12-3456 and 912-34-5678",
        EntityType::US_SSN,
    );
    none_of("ISBN 978-3-16-148410-0", EntityType::CREDIT_CARD);
    none_of("running version 1.2.3.4.5 now", EntityType::IP_ADDRESS);
    none_of("at 10:22:31 UTC", EntityType::IP_ADDRESS);
    none_of("IBAN DE89 3704 0044 0532 0130 01", EntityType::IBAN_CODE); // bad mod 97
    none_of("btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", EntityType::CRYPTO); // bad checksum
    none_of(
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        EntityType::PHONE_NUMBER,
    );
    none_of(
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        EntityType::SECRET,
    );
    none_of("price $1,299.99 for 3 items", EntityType::PHONE_NUMBER);
    none_of("password: ********", EntityType::SECRET);
}

#[test]
fn overlaps_resolve_and_offsets_count_code_points() {
    // An email inside a URL is the email; the URL does not overlap it.
    let f = found("see https://x.io/u?mail=ann@x.io");
    assert!(
        f.iter().any(|(k, _)| *k == EntityType::EMAIL_ADDRESS),
        "{f:?}"
    );
    assert!(f.iter().all(|(k, _)| *k != EntityType::URL), "{f:?}");
    // Code points: "é" is one.
    let e = Scanner::default().scan("é ann@x.io");
    assert_eq!((e[0].start, e[0].end), (2, 10));
}

#[test]
fn hostile_input_is_linear_and_safe() {
    let long = "1".repeat(1 << 20) + "@" + &"a.".repeat(1 << 18);
    let _ = Scanner::default().scan(&long);
    // Inputs that make many candidates of one kind: each must cost linear time (a
    // quadratic scan of a megabyte does not finish).
    for unit in [
        "password",
        "password=",
        "Dr. Aaron ",
        "GB82 ",
        "12 Main ",
        "+44 (0)",
        "020 ",
        "bc1",
        "a@b.",
        "::",
    ] {
        let text = unit.repeat((1 << 20) / unit.len());
        let _ = Scanner::default().scan(&text);
    }
    let names: String = (0..20_000).map(|i| format!("Dr. Name{i:x} ")).collect();
    let _ = Scanner::default().scan(&names);
    let _ = Scanner::default().scan("");
    let _ = Scanner::default().scan("\u{0}\u{ffff}\u{10ffff}");
}

#[test]
fn people_are_found_by_titles_cues_lists_columns_and_mentions() {
    has("Hi, I'm Ms. Okonkwo. Thanks", EntityType::PERSON, "Okonkwo");
    has(
        "and my name is Joshua P. Hill.",
        EntityType::PERSON,
        "Joshua P. Hill",
    );
    has(
        "# deploy script written by Fatima Hassan",
        EntityType::PERSON,
        "Fatima Hassan",
    );
    has(
        "Best regards,\nSiobhan O'Neill",
        EntityType::PERSON,
        "Siobhan O'Neill",
    );
    has(
        "We met Robert Brown at the fair",
        EntityType::PERSON,
        "Robert Brown",
    );
    has(
        "name,email\nAgnieszka Wiśniewska,a@x.pl",
        EntityType::PERSON,
        "Agnieszka Wiśniewska",
    );
    // A later mention of the surname alone.
    has(
        "Patient Karen Okafor, DOB on file. Okafor reports pain.",
        EntityType::PERSON,
        "Okafor",
    );
    // Capitalised phrases that are not people.
    none_of(
        "An International Bank Account Number identifies an account.",
        EntityType::PERSON,
    );
    none_of("The Golden Gate Bridge opened in May.", EntityType::PERSON);
    none_of("write a haiku about autumn", EntityType::PERSON);
}

#[test]
fn street_addresses_are_found() {
    has(
        "I live at 8881 Main Dr, Austin, TX 78745 and",
        EntityType::STREET_ADDRESS,
        "8881 Main Dr, Austin, TX 78745",
    );
    has(
        "ship to 12 Baker Street please",
        EntityType::STREET_ADDRESS,
        "12 Baker Street",
    );
    none_of("we sold 300 Main products", EntityType::STREET_ADDRESS);
}

#[test]
fn identity_documents_need_their_context_words() {
    has(
        "Patient DOB: 03/15/1984, seen today",
        EntityType::DATE_OF_BIRTH,
        "03/15/1984",
    );
    has(
        "she was born on March 5, 1990 in Ohio",
        EntityType::DATE_OF_BIRTH,
        "March 5, 1990",
    );
    has(
        "date of birth 1979-11-02",
        EntityType::DATE_OF_BIRTH,
        "1979-11-02",
    );
    // A date without a birth word is not a date of birth; an impossible one never is.
    none_of("the invoice is due 03/15/2024", EntityType::DATE_OF_BIRTH);
    none_of("DOB: 45/77/1984", EntityType::DATE_OF_BIRTH);

    has(
        "my passport number is 912803456",
        EntityType::US_PASSPORT,
        "912803456",
    );
    none_of("order 912803456 shipped", EntityType::US_PASSPORT);

    has(
        "Driver's license: D1234567 (CA)",
        EntityType::US_DRIVER_LICENSE,
        "D1234567",
    );
    none_of("model D1234567 is sold out", EntityType::US_DRIVER_LICENSE);

    // 943 476 5919 passes the modulus-11 check; 943 476 5918 does not.
    has(
        "NHS number 943 476 5919 on the letter",
        EntityType::UK_NHS,
        "943 476 5919",
    );
    none_of("NHS number 943 476 5918", EntityType::UK_NHS);
}

fn scanner(json: serde_json::Value) -> Result<Scanner, ConfigError> {
    Scanner::new(serde_json::from_value(json).expect("a configuration"))
}

fn kinds(s: &Scanner, text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    s.scan(text)
        .into_iter()
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                chars[e.start..e.end].iter().collect(),
            )
        })
        .collect()
}

#[test]
fn workspaces_add_recognizers_lists_and_thresholds() {
    let s = scanner(serde_json::json!({
        "recognizers": [
            {"name": "employee id", "entity_type": "EMPLOYEE_ID", "pattern": r"\bEMP-\d{6}\b",
             "score": 0.4, "context": ["employee"]},
            {"name": "projects", "entity_type": "CODENAME", "deny_list": ["Bluebird", "Nightjar"]},
            {"name": "loyalty card", "entity_type": "LOYALTY_CARD", "pattern": r"\b\d{8}\b",
             "validator": "luhn", "score": 0.9},
        ],
        "allow_list": ["support@acme.example"],
        "thresholds": {"URL": 0.95},
    }))
    .unwrap();
    // The context word lifts the employee id over the threshold; alone it stays below.
    let f = kinds(&s, "employee EMP-123456 works on bluebird");
    assert!(
        f.contains(&("EMPLOYEE_ID".into(), "EMP-123456".into())),
        "{f:?}"
    );
    assert!(f.contains(&("CODENAME".into(), "bluebird".into())), "{f:?}");
    assert!(kinds(&s, "ticket EMP-123456").is_empty());
    // The validator keeps Luhn-valid numbers only.
    assert_eq!(kinds(&s, "card 12345674").len(), 1);
    assert!(kinds(&s, "card 12345670").is_empty());
    // Allowed values and types under their threshold are not reported.
    assert!(kinds(&s, "write to support@acme.example").is_empty());
    assert!(kinds(&s, "see https://x.example/docs").is_empty());
    assert_eq!(kinds(&s, "write to ann@acme.example").len(), 1);

    let only = scanner(serde_json::json!({"types": ["EMAIL_ADDRESS"]})).unwrap();
    assert_eq!(
        kinds(&only, "ann@x.io 123-45-6789"),
        vec![("EMAIL_ADDRESS".into(), "ann@x.io".into())]
    );
}

#[test]
fn bad_configurations_name_the_field() {
    let field = |json| scanner(json).err().map(|e| e.field);
    assert_eq!(
        field(serde_json::json!({"min_score": 1.5})),
        Some("min_score".into())
    );
    assert_eq!(
        field(serde_json::json!({"thresholds": {"nope": 0.5}})),
        Some("thresholds.nope".into())
    );
    assert_eq!(
        field(serde_json::json!({"recognizers": [
            {"name": "x", "entity_type": "X", "pattern": "("}
        ]})),
        Some("recognizers[0].pattern".into())
    );
    assert_eq!(
        field(serde_json::json!({"recognizers": [{"name": "x", "entity_type": "X"}]})),
        Some("recognizers[0].pattern".into())
    );
    // A pattern whose automaton would be huge is refused, not compiled.
    assert_eq!(
        field(serde_json::json!({"recognizers": [
            {"name": "x", "entity_type": "X", "pattern": r"\w{1000}\w{1000}\w{1000}"}
        ]})),
        Some("recognizers[0].pattern".into())
    );
    // Type names are validated when the configuration is read.
    assert!(serde_json::from_value::<ScanConfig>(serde_json::json!({"types": ["lower"]})).is_err());
    assert!(serde_json::from_value::<ScanConfig>(serde_json::json!({"typo": 1})).is_err());
}

/// The fuzz targets' properties on stable: texts made of PII, separators and hostile
/// characters, mutated at random (a fixed seed, so failures reproduce).
#[test]
fn properties_hold_on_mutated_inputs() {
    let pieces = [
        "ann.lee@corp.io",
        "4111 1111 1111 1111",
        "123-45-6789",
        "(415) 555-2671",
        "+44 20 7946 0958",
        "203.0.113.9",
        "2001:db8::1",
        "DE89 3704 0044 0532 0130 00",
        "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
        "AKIAIOSFODNN7EXAMPLE",
        "password=Xk29fjQ8sLmZ",
        "https://x.io/u?mail=",
        "Maria Gonzalez",
        "Dr. Okafor",
        "12 Baker Street",
        "DOB: 03/15/1984",
        "00:1A:2B:3C:4D:5E",
        "é",
        "日本",
        "\u{0}",
        "\u{200d}",
        "🙂",
        " ",
        "\n",
        ",",
        ".",
        "-",
        "@",
        ":",
        "=",
        "tok_",
        "enc_",
        "hash_",
        "<",
        ">",
        "*",
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    for _ in 0..400 {
        let mut text = String::new();
        for _ in 0..1 + next(8) {
            text.push_str(pieces[next(pieces.len())]);
            if next(3) > 0 {
                text.push(' ');
            }
        }
        // Byte-level damage, made valid UTF-8 again the way the CLI and API would see it.
        let mut bytes = text.into_bytes();
        for _ in 0..next(3) {
            if !bytes.is_empty() {
                let i = next(bytes.len());
                bytes[i] = next(256) as u8;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        properties::check_anonymize(&text);
    }
}

#[test]
fn overlap_resolution_agrees_with_a_pairwise_check_past_a_handful_of_spans() {
    // Deterministic pseudo-random spans, many overlapping, some hundreds in all: the kept
    // set is the greedy one, by score then length then position, whatever its size.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rand = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n) as usize
    };
    for count in [3, 15, 16, 17, 40, 400] {
        let c: Vec<Candidate> = (0..count)
            .map(|_| {
                let start = rand(2000);
                Candidate {
                    kind: EntityType::EMAIL_ADDRESS,
                    start,
                    end: start + 1 + rand(30),
                    score: rand(5) as f32 / 4.0,
                    recognizer: "test",
                }
            })
            .collect();
        let mut order = c.clone();
        order.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
                .then(a.start.cmp(&b.start))
        });
        let mut want: Vec<(usize, usize)> = vec![];
        for k in &order {
            if want.iter().all(|&(s, e)| e <= k.start || k.end <= s) {
                want.push((k.start, k.end));
            }
        }
        want.sort();
        let got: Vec<(usize, usize)> = resolve(c).iter().map(|k| (k.start, k.end)).collect();
        assert_eq!(got, want, "{count} candidates");
    }
}

#[test]
fn secrets_are_found_at_every_prefix_and_only_there() {
    let secrets = |text: &str| of(text, EntityType::SECRET);
    // Two keys of one kind, one of another, a token after `Bearer` and a tab, and a JWT.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let text = format!(
        "a AKIAIOSFODNN7EXAMPLE b AKIAZ3RI3YZG735ZOGXL sk_live_AM1VZ2alyEAY8sdmExwD \
         Authorization: BEARER\tQm9vdHN0cmFwVG9rZW4xMjM0 then {jwt}."
    );
    assert_eq!(
        secrets(&text),
        [
            "AKIAIOSFODNN7EXAMPLE",
            "AKIAZ3RI3YZG735ZOGXL",
            "sk_live_AM1VZ2alyEAY8sdmExwD",
            "Qm9vdHN0cmFwVG9rZW4xMjM0",
            jwt,
        ]
    );
    // Prefixes inside words, in the wrong case or with too little after them are not.
    assert!(
        secrets("xAKIAIOSFODNN7EXAMPLE akiaIOSFODNN7EXAMPLE AKIA123 xbearer Qm9vdHN0cmFwVG9rZW4xMjM0 bearer short")
            .is_empty()
    );
}

#[test]
fn scanners_share_the_built_in_recognizers() {
    let a = Scanner::default();
    let b = Scanner::new(ScanConfig {
        min_score: 0.9,
        ..ScanConfig::default()
    })
    .unwrap();
    // Compiled once per process: a scanner per request costs only its own recognizers.
    assert!(std::ptr::eq(a.set, b.set) && std::ptr::eq(a.names, b.names));
    assert_eq!(
        b.scan("at 415-555-2671 or mail a.b@example.com")
            .iter()
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>(),
        [EntityType::EMAIL_ADDRESS]
    );
}

#[test]
fn urls_and_mac_addresses_are_found_from_their_separators() {
    assert_eq!(
        of(
            "https://a.example/x, then HTTP://B.EXAMPLE/y; ftp://files.example/z. \
             Not xhttp://c.example nor mailto://d nor ://e, but http\u{17f}://f.example/",
            EntityType::URL
        ),
        [
            "https://a.example/x",
            "HTTP://B.EXAMPLE/y",
            "ftp://files.example/z",
            "http\u{17f}://f.example/",
        ]
    );
    assert_eq!(
        of(
            "00:1A:2B:3C:4D:5E and 00-1a-2b-3c-4d-5f; not 00:1A-2B:3C:4D:5E nor x00:1A:2B:3C:4D:5E",
            EntityType::MAC_ADDRESS
        ),
        ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5f"]
    );
}

#[test]
fn assignments_and_addresses_need_their_separators_and_capitals() {
    // The keyword anywhere in a dotted key, a quote and white space before the separator.
    for (text, value) in [
        ("cfg a.token.password=Xk3$9vLq2!mZ", "Xk3$9vLq2!mZ"),
        ("\"api_key\" \t: 'Q7w!e9R2t$Y4'", "Q7w!e9R2t$Y4"),
        ("AUTH_TOKEN\u{a0}= Zp4@Lm8#Qr2^", "Zp4@Lm8#Qr2^"),
    ] {
        assert_eq!(of(text, EntityType::SECRET), [value], "{text:?}");
    }
    assert!(
        of(
            "my password is Xk3$9vLq2!mZ, the token. Zp4@Lm8#Qr2^",
            EntityType::SECRET
        )
        .is_empty()
    );
    assert_eq!(
        of(
            "ship to 12 Main St, then 3 days to 4B\tOak Avenue",
            EntityType::STREET_ADDRESS
        ),
        ["12 Main St", "4B\tOak Avenue"]
    );
    assert!(of("about 12 main street folk", EntityType::STREET_ADDRESS).is_empty());
}

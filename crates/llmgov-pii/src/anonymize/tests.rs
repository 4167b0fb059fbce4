use super::*;
use crate::{Scanner, checks};

fn keys(n: u8) -> Keys {
    Keys::derive(&[n; 32])
}

fn profile(json: serde_json::Value) -> Profile {
    serde_json::from_value(json).expect("a profile")
}

fn run(p: &Profile, k: Option<&Keys>, scope: &str, text: &str) -> (String, Vec<TokenRecord>) {
    let s = Scanner::default();
    let mut tokens = vec![];
    let a = Anonymizer::new(p, k, scope).unwrap();
    let out = a.text(text, &s.scan(text), &mut tokens);
    (out.text, tokens)
}

const TEXT: &str = "Mail ann.lee@corp.io, SSN 123-45-6789, card 4111 1111 1111 1111, \
    from 203.0.113.9 – IBAN DE89 3704 0044 0532 0130 00, wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT, \
    key AKIAIOSFODNN7EXAMPLE, call (415) 555-2671. Regards, Maria Gonzalez";

#[test]
fn replace_redact_and_mask() {
    let p = profile(serde_json::json!({
        "operators": {
            "EMAIL_ADDRESS": {"operator": "redact"},
            "CREDIT_CARD": {"operator": "mask", "keep": 4},
            "US_SSN": {"operator": "replace", "with": "[ssn]"},
        }
    }));
    let (out, tokens) = run(&p, None, "", TEXT);
    assert!(
        out.starts_with("Mail , SSN [ssn], card **** **** **** 1111,"),
        "{out}"
    );
    assert!(
        out.contains("<IP_ADDRESS>") && out.contains("<PERSON>"),
        "{out}"
    );
    assert!(tokens.is_empty());
}

#[test]
fn replacements_report_offsets_in_code_points() {
    let p = Profile::default();
    let text = "é → ann@x.io and bob@y.io";
    let s = Scanner::default();
    let a = Anonymizer::new(&p, None, "").unwrap();
    let out = a.text(text, &s.scan(text), &mut vec![]);
    assert_eq!(out.text, "é → <EMAIL_ADDRESS> and <EMAIL_ADDRESS>");
    let r = &out.items[1];
    let chars: Vec<char> = out.text.chars().collect();
    assert_eq!(
        chars[r.new_start..r.new_end].iter().collect::<String>(),
        "<EMAIL_ADDRESS>"
    );
    assert_eq!((out.items[0].start, out.items[0].end), (4, 12));
}

#[test]
fn hashes_are_consistent_within_a_workspace_only() {
    let p = profile(serde_json::json!({"default": {"operator": "hash"}}));
    let (a, _) = run(&p, Some(&keys(1)), "", "ann@x.io and ann@x.io");
    let words: Vec<&str> = a.split(" and ").collect();
    assert_eq!(words[0], words[1]);
    assert!(is_surrogate(words[0]) && words[0].len() == 69, "{a}");
    let (b, _) = run(&p, Some(&keys(2)), "", "ann@x.io");
    assert_ne!(words[0], b);
}

#[test]
fn encryption_round_trips_and_detects_tampering() {
    let k = keys(3);
    let p = profile(serde_json::json!({"default": {"operator": "encrypt"}}));
    let (out, _) = run(&p, Some(&k), "", "write to ann@x.io now");
    let found = find_surrogates(&out);
    assert_eq!(found.len(), 1);
    let enc = &out[found[0].start..found[0].end];
    assert_eq!(
        k.decrypt(enc),
        Some((EntityType::EMAIL_ADDRESS, "ann@x.io".into()))
    );
    assert_eq!(keys(4).decrypt(enc), None, "another workspace's key");
    let mut bad = enc.to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(k.decrypt(&bad), None);
    // Two encryptions of one value differ (random nonces).
    let (again, _) = run(&p, Some(&k), "", "write to ann@x.io now");
    assert_ne!(out, again);
}

#[test]
fn tokens_are_stable_and_recorded_once() {
    let k = keys(5);
    let p = profile(serde_json::json!({"default": {"operator": "tokenize"}}));
    let (out, tokens) = run(&p, Some(&k), "", "ann@x.io, bob@y.io, ann@x.io");
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].value, "ann@x.io");
    assert_eq!(
        out,
        format!(
            "{}, {}, {}",
            tokens[0].token, tokens[1].token, tokens[0].token
        )
    );
    let spans = find_surrogates(&out);
    assert_eq!(spans.len(), 3);
    assert!(spans.iter().all(|s| s.kind == SurrogateKind::Token));
    assert_eq!(
        k.token(&EntityType::EMAIL_ADDRESS, "ann@x.io"),
        tokens[0].token
    );
}

#[test]
fn keyed_operators_need_keys() {
    let p = profile(serde_json::json!({"operators": {"PERSON": {"operator": "pseudonymize"}}}));
    assert_eq!(
        Anonymizer::new(&p, None, "").err(),
        Some(AnonymizeError::NeedsKeys("pseudonymize"))
    );
    let bad = profile(serde_json::json!({"operators": {"nope": {"operator": "redact"}}}));
    assert!(matches!(
        Anonymizer::new(&bad, None, "").err(),
        Some(AnonymizeError::Config(_))
    ));
    assert!(
        serde_json::from_value::<Profile>(serde_json::json!({"default": {"operator": "shred"}}))
            .is_err()
    );
}

#[test]
fn operators_parse_from_the_command_line() {
    assert_eq!(Operator::parse("redact"), Ok(Operator::Redact));
    assert_eq!(
        Operator::parse("mask:4"),
        Ok(Operator::Mask { keep: 4, char: '*' })
    );
    assert_eq!(
        Operator::parse("replace:[x]"),
        Ok(Operator::Replace {
            with: Some("[x]".into())
        })
    );
    assert!(Operator::parse("mask:x").is_err());
    assert!(Operator::parse("hash:1").is_err());
    assert!(Operator::parse("shred").is_err());
}

#[test]
fn pseudonyms_keep_formats_and_are_consistent_per_scope() {
    let k = keys(6);
    let p = profile(serde_json::json!({"default": {"operator": "pseudonymize"}}));
    let a = Anonymizer::new(&p, Some(&k), "dataset-1").unwrap();
    let fake = |t: EntityType, v: &str| a.apply(&Operator::Pseudonymize, &t, v, &mut vec![]);

    let card = fake(EntityType::CREDIT_CARD, "4111 1111 1111 1111");
    let d: Vec<u8> = card.bytes().filter(u8::is_ascii_digit).collect();
    assert!(checks::luhn(&d) && checks::card_issuer(&d), "{card}");
    assert_eq!(card.len(), 19);
    assert_ne!(card, "4111 1111 1111 1111");

    let iban = fake(EntityType::IBAN_CODE, "DE89 3704 0044 0532 0130 00");
    let c: Vec<u8> = iban.bytes().filter(|b| *b != b' ').collect();
    assert!(iban.starts_with("DE") && checks::iban(&c), "{iban}");

    let email = fake(EntityType::EMAIL_ADDRESS, "ann@corp.io");
    assert!(email.contains("@example."), "{email}");
    let s = Scanner::default();
    assert_eq!(s.scan(&email)[0].kind, EntityType::EMAIL_ADDRESS);

    let btc = fake(EntityType::CRYPTO, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT");
    assert!(checks::base58check(&btc), "{btc}");
    let bech = fake(
        EntityType::CRYPTO,
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    );
    assert!(checks::bech32(&bech) && bech.starts_with("bc1"), "{bech}");
    let eth = fake(
        EntityType::CRYPTO,
        "0x52908400098527886E0F7030069857D2E4169EE7",
    );
    assert_eq!(eth.len(), 42);

    let ssn = fake(EntityType::US_SSN, "123-45-6789");
    assert_eq!(s.scan(&format!("ssn {ssn}"))[0].kind, EntityType::US_SSN);
    let nhs = fake(EntityType::UK_NHS, "943 476 5919");
    assert!(checks::nhs(
        &nhs.bytes().filter(u8::is_ascii_digit).collect::<Vec<_>>()
    ));
    let mac = fake(EntityType::MAC_ADDRESS, "00:1A:2B:3C:4D:5E");
    assert_eq!(s.scan(&mac)[0].kind, EntityType::MAC_ADDRESS);
    let ip = fake(EntityType::IP_ADDRESS, "2001:db8::1");
    assert!(ip.parse::<std::net::Ipv6Addr>().is_ok(), "{ip}");
    let phone = fake(EntityType::PHONE_NUMBER, "+44 20 7946 0958");
    assert!(phone.starts_with("+44 "), "{phone}");

    // The same value has the same fake in one scope and another in a different scope;
    // a surname keeps its fake when mentioned alone.
    assert_eq!(fake(EntityType::CREDIT_CARD, "4111 1111 1111 1111"), card);
    let other = Anonymizer::new(&p, Some(&k), "dataset-2").unwrap();
    assert_ne!(
        other.apply(
            &Operator::Pseudonymize,
            &EntityType::CREDIT_CARD,
            "4111 1111 1111 1111",
            &mut vec![]
        ),
        card
    );
    let full = fake(EntityType::PERSON, "Maria Gonzalez");
    let last = fake(EntityType::PERSON, "Gonzalez");
    assert!(full.ends_with(&format!(" {last}")), "{full} / {last}");
    assert_ne!(full, "Maria Gonzalez");
}

#[test]
fn anonymized_text_has_no_entity_of_an_anonymized_type() {
    let k = keys(7);
    let s = Scanner::default();
    for op in ["redact", "replace", "mask", "hash", "encrypt", "tokenize"] {
        let p = profile(serde_json::json!({"default": {"operator": op}}));
        for text in [
            TEXT,
            "password=Xk29fjQ8sLmZ token: Bearer abcDEF1234567890xyzQ",
        ] {
            let (out, _) = run(&p, Some(&k), "", text);
            let left = s.scan(&out);
            assert!(left.is_empty(), "{op}: {out:?} still has {left:?}");
        }
    }
}

#[test]
fn records_follow_field_rules_and_scan_the_rest() {
    let k = keys(8);
    let p = profile(serde_json::json!({
        "default": {"operator": "replace"},
        "fields": {
            "user.email": {"operator": "hash"},
            "user.id": {"operator": "tokenize", "entity_type": "USER_ID"},
            "meta": {"operator": "keep"},
        }
    }));
    let a = Anonymizer::new(&p, Some(&k), "").unwrap();
    let mut v = serde_json::json!({
        "user": {"email": "not scanned, hashed whole", "id": 42},
        "messages": [{"content": "I am at ann@x.io"}, {"content": "no pii"}],
        "meta": {"contact": "bob@y.io"},
    });
    let mut report = JsonReport::default();
    a.json(&Scanner::default(), &mut v, &mut report);
    assert!(is_surrogate(v["user"]["email"].as_str().unwrap()));
    assert!(v["user"]["id"].as_str().unwrap().starts_with("tok_"));
    assert_eq!(v["messages"][0]["content"], "I am at <EMAIL_ADDRESS>");
    assert_eq!(v["meta"]["contact"], "bob@y.io");
    assert_eq!(report.replaced["FIELD"], 1);
    assert_eq!(report.replaced["USER_ID"], 1);
    assert_eq!(report.replaced["EMAIL_ADDRESS"], 1);
    assert_eq!(report.tokens.len(), 1);
    assert_eq!(report.tokens[0].value, "42");
}

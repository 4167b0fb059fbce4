//! PKCS#11 start-up errors, in a process of their own: a token's login state is shared by
//! every session of a process, so a wrong PIN is only refused where nobody logged in.

use llmgov_core::CoreError;
use llmgov_store::pkcs11::Pkcs11KeyProvider;
use llmgov_store::testing::hsm_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_or_a_wrong_pin_is_a_clear_error() {
    let mut cfg = hsm_config("llmgov-test-errors");
    cfg.token_label = "no-such-token".into();
    match Pkcs11KeyProvider::open(&cfg) {
        Err(CoreError::Unavailable(m)) => assert!(m.contains("no-such-token"), "{m}"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened a missing token"),
    }
    let mut cfg = hsm_config("llmgov-test-errors");
    cfg.pin = "9999".into();
    assert!(matches!(
        Pkcs11KeyProvider::open(&cfg),
        Err(CoreError::Unauthenticated(_))
    ));
    let mut cfg = hsm_config("x");
    cfg.module = "/nonexistent/libpkcs11.so".into();
    assert!(matches!(
        Pkcs11KeyProvider::open(&cfg),
        Err(CoreError::Unavailable(_))
    ));
}

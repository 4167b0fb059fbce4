//! The key-provider contract, on the local key file and on a PKCS#11 token (SoftHSM2, set
//! up by `scripts/test.sh`): wrap and unwrap bound to their owner, rotation that keeps old
//! versions readable, a second instance that sees every version, clear errors.

use llmgov_core::vault::keys::{Dek, KdfParams, KeyProvider, LocalKeyProvider};
use llmgov_store::pkcs11::Pkcs11KeyProvider;
use llmgov_store::testing::hsm_config;

async fn contract(first: &dyn KeyProvider, reopen: impl Fn() -> Box<dyn KeyProvider>) {
    let dek = Dek::generate().unwrap();
    let w1 = first.wrap(&dek, b"ws|ds").await.unwrap();
    assert_eq!(w1.kek_version, 1);
    let back = first.unwrap(&w1, b"ws|ds").await.unwrap();
    assert_eq!(back.raw_bytes(), dek.raw_bytes());
    assert!(
        first.unwrap(&w1, b"ws|other").await.is_err(),
        "bound to its owner"
    );
    let mut tampered = w1.clone();
    let last = tampered.bytes.len() - 1;
    tampered.bytes[last] ^= 1;
    assert!(first.unwrap(&tampered, b"ws|ds").await.is_err());

    assert_eq!(first.rotate().await.unwrap(), 2);
    let w2 = first.wrap(&dek, b"ws|ds").await.unwrap();
    assert_eq!(w2.kek_version, 2);
    let second = reopen();
    assert_eq!(
        second.unwrap(&w1, b"ws|ds").await.unwrap().raw_bytes(),
        dek.raw_bytes()
    );
    assert_eq!(
        second.unwrap(&w2, b"ws|ds").await.unwrap().raw_bytes(),
        dek.raw_bytes()
    );
    let st = second.status().await.unwrap();
    assert_eq!((st.current_version, st.versions.clone()), (2, vec![1, 2]));

    // Trimming: never the current version; what a trimmed version wrapped is gone.
    assert!(second.trim(3).await.is_err());
    assert_eq!(second.trim(2).await.unwrap(), vec![1]);
    let third = reopen();
    assert!(third.unwrap(&w1, b"ws|ds").await.is_err());
    assert_eq!(
        third.unwrap(&w2, b"ws|ds").await.unwrap().raw_bytes(),
        dek.raw_bytes()
    );
    assert_eq!(third.status().await.unwrap().versions, vec![2]);
}

#[tokio::test]
async fn the_local_key_file_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.json");
    let p = LocalKeyProvider::create(&path, "a long passphrase", KdfParams::minimum()).unwrap();
    contract(&p, || {
        Box::new(LocalKeyProvider::open(&path, "a long passphrase").unwrap())
    })
    .await;
    assert_eq!(p.status().await.unwrap().provider, "local");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkcs11_token_keeps_the_contract() {
    let cfg = hsm_config(&format!("llmgov-test-{}", uuid::Uuid::new_v4()));
    let p = Pkcs11KeyProvider::open(&cfg).unwrap();
    contract(&p, || Box::new(Pkcs11KeyProvider::open(&cfg).unwrap())).await;
    assert_eq!(p.status().await.unwrap().provider, "pkcs11");
}

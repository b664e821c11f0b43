//! The hashing pool's tests: PHC strings, bcrypt upgrade, dummy verifies, the bounded
//! queue.

use super::*;
use argon2::{Argon2, PasswordHasher as _};
use futures_util::{FutureExt as _, future::join_all};

const PASSWORD: &str = "correct-Horse-battery-st4ple";

fn password(raw: &str) -> Password {
    Password::unchecked(raw.to_owned())
}

fn hasher() -> PasswordHasher {
    PasswordHasher::new(HashParams::default(), 2, 8, Duration::from_secs(30))
}

/// An Argon2 hash of `raw` with explicit (possibly weak) parameters, made directly.
fn argon2_hash(raw: &str, algorithm: Algorithm, m: u32, t: u32, p: u32) -> String {
    let params = Params::new(m, t, p, None).unwrap();
    Argon2::new(algorithm, Version::V0x13, params)
        .hash_password(raw.as_bytes())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_hash_verifies_its_password_and_refuses_another() {
    let hasher = hasher();
    let stored = hasher.hash(&password(PASSWORD)).await.unwrap();
    assert_eq!(
        hasher
            .verify(&password(PASSWORD), Some(&stored))
            .await
            .unwrap(),
        Verified::Yes { rehash: None }
    );
    assert_eq!(
        hasher
            .verify(&password("correct-Horse-battery-st4plE"), Some(&stored))
            .await
            .unwrap(),
        Verified::No
    );
}

#[tokio::test]
async fn a_hash_is_an_argon2id_phc_string_with_the_default_parameters_and_a_random_salt() {
    let hasher = hasher();
    let presented = password(PASSWORD);
    let (a, b) = tokio::join!(hasher.hash(&presented), hasher.hash(&presented));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
    assert_ne!(a, b);
    assert!(!a.contains(PASSWORD));
}

#[tokio::test]
async fn hashes_from_the_reused_memory_agree_with_the_argon2_crate_both_ways() {
    use argon2::PasswordVerifier as _;
    let hasher = hasher();
    let ours = hasher.hash(&password(PASSWORD)).await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    let reference = Argon2::default();
    assert!(
        reference
            .verify_password(PASSWORD.as_bytes(), &parsed)
            .is_ok()
    );
    assert!(
        reference
            .verify_password(b"another password", &parsed)
            .is_err()
    );
    // A hash the crate made alone verifies on the pool's threads, many times over the
    // same reused buffers, interleaved with hashes of other parameters.
    let theirs = argon2_hash(PASSWORD, Algorithm::Argon2id, 19_456, 2, 1);
    let bigger = argon2_hash(PASSWORD, Algorithm::Argon2id, 32_768, 2, 1);
    for stored in [&theirs, &bigger, &theirs, &ours] {
        let verified = hasher
            .verify(&password(PASSWORD), Some(stored))
            .await
            .unwrap();
        assert!(matches!(verified, Verified::Yes { .. }), "{stored}");
        let wrong = hasher
            .verify(&password("nope-nope-nope-1"), Some(stored))
            .await;
        assert_eq!(wrong.unwrap(), Verified::No);
    }
}

#[tokio::test]
async fn a_legacy_bcrypt_hash_verifies_and_is_rehashed_to_argon2id() {
    let hasher = hasher();
    let bcrypt_2b = bcrypt::hash(PASSWORD, 4).unwrap();
    assert!(bcrypt_2b.starts_with("$2b$04$"));
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let stored = format!("{prefix}{}", &bcrypt_2b[4..]);
        let Verified::Yes {
            rehash: Some(rehash),
        } = hasher
            .verify(&password(PASSWORD), Some(&stored))
            .await
            .unwrap()
        else {
            panic!("{prefix} hash did not verify with a rehash");
        };
        assert!(rehash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher
                .verify(&password(PASSWORD), Some(&rehash))
                .await
                .unwrap(),
            Verified::Yes { rehash: None }
        );
    }
}

#[tokio::test]
async fn a_wrong_password_against_a_bcrypt_hash_is_refused() {
    let stored = bcrypt::hash(PASSWORD, 4).unwrap();
    assert_eq!(
        hasher()
            .verify(&password("not the password"), Some(&stored))
            .await
            .unwrap(),
        Verified::No
    );
}

#[tokio::test]
async fn an_argon2_hash_weaker_than_current_is_rehashed() {
    let hasher = hasher();
    for stored in [
        argon2_hash(PASSWORD, Algorithm::Argon2id, 4096, 3, 1),
        argon2_hash(PASSWORD, Algorithm::Argon2id, 19_456, 1, 1),
        argon2_hash(PASSWORD, Algorithm::Argon2i, 19_456, 2, 1),
    ] {
        let Verified::Yes {
            rehash: Some(rehash),
        } = hasher
            .verify(&password(PASSWORD), Some(&stored))
            .await
            .unwrap()
        else {
            panic!("{stored} did not verify with a rehash");
        };
        assert!(rehash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
}

#[tokio::test]
async fn an_argon2_hash_stronger_than_current_verifies_without_rehash() {
    let stored = argon2_hash(PASSWORD, Algorithm::Argon2id, 19_456, 3, 1);
    assert_eq!(
        hasher()
            .verify(&password(PASSWORD), Some(&stored))
            .await
            .unwrap(),
        Verified::Yes { rehash: None }
    );
}

#[tokio::test]
async fn an_unknown_account_is_refused_after_a_dummy_verify() {
    let hasher = hasher();
    assert!(hasher.inner.dummy.get().is_none());
    assert_eq!(
        hasher.verify(&password(PASSWORD), None).await.unwrap(),
        Verified::No
    );
    // The dummy hash was made with the current parameters, and is kept.
    let dummy = hasher.inner.dummy.get().unwrap().to_string();
    assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    // Even the dummy password itself gets no access to a missing account.
    let raw = String::from_utf8(DUMMY_PASSWORD.to_vec()).unwrap();
    assert_eq!(
        hasher.verify(&password(&raw), None).await.unwrap(),
        Verified::No
    );
    assert_eq!(hasher.inner.dummy.get().unwrap().to_string(), dummy);
}

#[tokio::test]
async fn a_malformed_stored_hash_is_refused_without_panicking() {
    let hasher = hasher();
    let valid_bcrypt = bcrypt::hash(PASSWORD, 4).unwrap();
    let non_ascii_bcrypt = format!("$2b$04${}", "é".repeat(26));
    assert_eq!(non_ascii_bcrypt.len(), 59);
    let malformed = [
        String::new(),
        "not a hash".to_owned(),
        "$argon2id$v=19$m=19456,t=2,p=1$".to_owned(),
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$".to_owned(),
        "$argon2id$v=42$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        "$argon2id$v=19$m=19456,t=9999,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        "$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA".to_owned(),
        format!("{}é", &valid_bcrypt[..59]),
        non_ascii_bcrypt.clone() + "x",
        format!("$2x${}", &valid_bcrypt[4..]),
        format!("$2b$31${}", &valid_bcrypt[7..]),
        format!("$2b$03${}", &valid_bcrypt[7..]),
        valid_bcrypt[..40].to_owned(),
    ];
    for stored in &malformed {
        assert_eq!(
            hasher
                .verify(&password(PASSWORD), Some(stored))
                .await
                .unwrap(),
            Verified::No,
            "{stored}"
        );
    }
}

#[tokio::test]
async fn an_implausibly_long_password_is_refused_without_hashing() {
    // No worker and no queue: any hashing attempt would answer Busy.
    let hasher = PasswordHasher::new(HashParams::default(), 1, 0, Duration::ZERO);
    let _held = Arc::clone(&hasher.inner.workers)
        .try_acquire_owned()
        .unwrap();
    let long = password(&"a".repeat(1025));
    assert_eq!(hasher.verify(&long, None).await.unwrap(), Verified::No);
    assert!(matches!(
        hasher.verify(&password(PASSWORD), None).await,
        Err(HashError::Busy { .. })
    ));
}

#[tokio::test]
async fn callers_beyond_the_workers_and_the_queue_are_told_busy_at_once() {
    let hasher = PasswordHasher::new(HashParams::default(), 1, 1, Duration::from_secs(30));
    let stored = hasher.hash(&password(PASSWORD)).await.unwrap();
    let presented = password(PASSWORD);

    // Take the only worker, as a running job would.
    let held = Arc::clone(&hasher.inner.workers)
        .try_acquire_owned()
        .unwrap();
    let mut calls = Box::pin(join_all(
        (0..5).map(|_| hasher.verify(&presented, Some(&stored))),
    ));
    // One poll: the first caller takes the only queue place, the four others are shed.
    assert!((&mut calls).now_or_never().is_none());
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 1);

    // The worker frees up: the queued caller gets it.
    drop(held);
    let outcomes = calls.await;
    let succeeded = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Verified::Yes { rehash: None })))
        .count();
    let busy = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Err(HashError::Busy {
                    retry_after_secs: 30
                })
            )
        })
        .count();
    assert_eq!((succeeded, busy), (1, 4));
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
    assert_eq!(hasher.inner.workers.available_permits(), 1);
}

#[tokio::test]
async fn a_queued_caller_is_told_busy_when_its_deadline_passes() {
    let hasher = PasswordHasher::new(HashParams::default(), 1, 4, Duration::from_millis(20));
    let _held = Arc::clone(&hasher.inner.workers)
        .try_acquire_owned()
        .unwrap();
    assert!(matches!(
        hasher.hash(&password(PASSWORD)).await,
        Err(HashError::Busy {
            retry_after_secs: 1
        })
    ));
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
}

#[tokio::test]
async fn a_caller_that_gives_up_frees_its_queue_place() {
    let hasher = PasswordHasher::new(HashParams::default(), 1, 1, Duration::from_secs(30));
    let _held = Arc::clone(&hasher.inner.workers)
        .try_acquire_owned()
        .unwrap();
    let presented = password(PASSWORD);
    let mut call = Box::pin(hasher.verify(&presented, None));
    assert!((&mut call).now_or_never().is_none());
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 1);
    drop(call);
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
}

#[tokio::test]
async fn clones_share_one_pool() {
    let hasher = PasswordHasher::new(HashParams::default(), 1, 0, Duration::ZERO);
    let clone = hasher.clone();
    let _held = Arc::clone(&hasher.inner.workers)
        .try_acquire_owned()
        .unwrap();
    assert!(matches!(
        clone.hash(&password(PASSWORD)).await,
        Err(HashError::Busy { .. })
    ));
}

#[test]
fn hash_params_default_to_the_api_minimum() {
    let params = HashParams::default();
    assert_eq!(
        (
            params.memory_kib(),
            params.iterations(),
            params.parallelism()
        ),
        (19_456, 2, 1)
    );
    assert_eq!(HashParams::new(19_456, 2, 1), Ok(params));
}

#[test]
fn hash_params_weaker_than_the_minimum_are_refused() {
    assert!(HashParams::new(19_455, 2, 1).is_err());
    assert!(HashParams::new(19_456, 1, 1).is_err());
    assert!(HashParams::new(19_456, 2, 0).is_err());
    let all = HashParams::new(4096, 1, 0).unwrap_err();
    assert!(all.contains("memory") && all.contains("iterations") && all.contains("parallelism"));
}

#[test]
fn hash_params_stronger_than_the_minimum_are_accepted_up_to_sane_limits() {
    assert!(HashParams::new(65_536, 3, 4).is_ok());
    assert!(HashParams::new(HashParams::MAX_MEMORY_KIB + 1, 2, 1).is_err());
    assert!(HashParams::new(19_456, 65, 1).is_err());
    assert!(HashParams::new(19_456, 2, 65).is_err());
}

//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1, the OWASP baseline).
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs on tokio's
//! blocking pool and a semaphore bounds how many run at once (by default one per CPU): a burst
//! of logins queues instead of exhausting memory or starving the runtime. Verification uses the
//! parameters recorded in the stored PHC string, so raising the parameters later keeps old
//! hashes valid.
//!
//! For an unknown user the server calls [`PasswordHasher::verify_dummy`], which verifies
//! against [`DUMMY_HASH`] with the same parameters: the answer takes as long as a wrong
//! password for a real user, so timing does not reveal which usernames exist.

use std::sync::Arc;

use argon2::password_hash::{self, PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;

/// A well-formed argon2id PHC string with the parameters above whose salt and output were
/// drawn at random: verifying against it costs exactly a real verification, and no known
/// password matches it.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Zt4KD9Uk8kXhOvGQ1n4iDQ$iMfTv1K1nZr4dY5cI8p3+3oBHHxVJQSdG3jHqkE8bgM";

/// Why hashing or verification could not be done (a wrong password is not an error).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a valid argon2 PHC string.
    #[error("stored password hash is invalid: {0}")]
    BadHash(password_hash::Error),
    /// Hashing failed (out of memory, RNG failure).
    #[error("password hashing failed: {0}")]
    Hashing(password_hash::Error),
    /// The blocking task did not complete (runtime shutting down or a panic).
    #[error("password hashing task failed: {0}")]
    Task(String),
}

fn argon2() -> Argon2<'static> {
    // The constants are within argon2's bounds; the fallback is never taken.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string with a random salt, on the current thread. For tools
/// (such as `chatd user add`); the server uses [`PasswordHasher::hash`].
pub fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    argon2()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hashing)
}

/// Checks `password` against the PHC string `stored`, on the current thread.
pub fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, PasswordError> {
    match argon2().verify_password(password, stored) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::BadHash(e)),
    }
}

/// Runs argon2 on the blocking pool with bounded concurrency. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordHasher::new(cpus)
    }
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` (at least 1) hashes at once.
    pub fn new(max_concurrent: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        // The permit moves into the task: if the caller is cancelled, the work still holds
        // its slot until it actually finishes.
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))
    }

    /// Hashes `password` into a PHC string with a random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_blocking(password.as_bytes())).await?
    }

    /// Whether `password` matches the PHC string `stored`.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, PasswordError> {
        self.run(move || verify_blocking(password.as_bytes(), &stored))
            .await?
    }

    /// Spends the time of a verification for a user that does not exist. Always `false`.
    pub async fn verify_dummy(&self, password: String) -> Result<bool, PasswordError> {
        self.run(move || verify_blocking(password.as_bytes(), DUMMY_HASH).map(|_| false))
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(2);
        let stored = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            hasher
                .verify("correct horse".into(), stored.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("correct horsf".into(), stored.clone())
                .await
                .expect("verify")
        );
        // Salted: the same password hashes differently.
        let again = hasher.hash("correct horse".into()).await.expect("hash");
        assert_ne!(stored, again);
    }

    #[tokio::test]
    async fn corrupt_stored_hash_is_an_error_not_a_mismatch() {
        let hasher = PasswordHasher::new(1);
        for bad in ["", "plaintext", "$argon2id$v=19$m=19456,t=2,p=1$%%%$###"] {
            let got = hasher.verify("whatever1".into(), bad.into()).await;
            assert!(
                matches!(got, Err(PasswordError::BadHash(_))),
                "{bad:?}: {got:?}"
            );
        }
    }

    #[test]
    fn dummy_hash_uses_the_configured_parameters() {
        let parsed = argon2::PasswordHash::new(DUMMY_HASH).expect("phc");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).expect("params");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (M_COST_KIB, T_COST, P_COST)
        );
        assert!(!verify_blocking(b"anything", DUMMY_HASH).expect("verify"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_is_bounded_by_the_semaphore() {
        let hasher = PasswordHasher::new(1);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let hasher = hasher.clone();
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            tasks.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("run");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }
}

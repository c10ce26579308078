//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1, the OWASP baseline).
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs on tokio's
//! blocking pool and a semaphore bounds how many run at once (by default one per CPU): a burst
//! of logins queues instead of exhausting memory or starving the runtime. Verification uses the
//! parameters recorded in the stored PHC string, so raising the parameters later keeps old
//! hashes valid.
//!
//! The 19 MiB of working memory is kept and reused, one buffer per concurrent hash. Allocating
//! it per hash looks free but is not: glibc raises its mmap threshold after the first such
//! buffer is freed, so later ones come from per-thread arenas and stay in the process (chatd
//! measured ~1.4 GiB resident after 1,000 logins on two blocking threads per CPU).
//!
//! For an unknown user the server calls [`PasswordHasher::verify_dummy`], which verifies
//! against [`DUMMY_HASH`] with the same parameters: the answer takes as long as a wrong
//! password for a real user, so timing does not reveal which usernames exist.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::Error as HashError;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Salt bytes (the PHC recommendation).
const SALT_LEN: usize = 16;

/// A well-formed argon2id PHC string with the parameters above whose salt and output were
/// drawn at random: verifying against it costs exactly a real verification, and no known
/// password matches it.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Zt4KD9Uk8kXhOvGQ1n4iDQ$iMfTv1K1nZr4dY5cI8p3+3oBHHxVJQSdG3jHqkE8bgM";

/// Why hashing or verification could not be done (a wrong password is not an error).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a valid argon2 PHC string.
    #[error("stored password hash is invalid: {0}")]
    BadHash(HashError),
    /// Hashing failed (out of memory, RNG failure).
    #[error("password hashing failed: {0}")]
    Hashing(HashError),
    /// The blocking task did not complete (runtime shutting down or a panic).
    #[error("password hashing task failed: {0}")]
    Task(String),
    /// As many hashes as may wait are waiting already: nothing was done (answered
    /// UNAVAILABLE, so that a flood of sign-ins cannot queue without bound).
    #[error("too many passwords are waiting to be checked")]
    Busy,
}

fn params() -> Params {
    // The constants are within argon2's bounds; the fallback is never taken.
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

/// Runs argon2 with `params` in `memory`, which grows to the blocks `params` needs and keeps
/// them for the next call.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    memory: &mut Vec<Block>,
) -> Result<Output, HashError> {
    // Exactly the blocks `params` needs; the capacity stays for the next call.
    memory.resize(params.block_count(), Block::default());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let out = buffer.get_mut(..output_len).ok_or(HashError::OutputSize)?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, memory)?;
    Ok(Output::new(out)?)
}

/// Hashes `password` with a fresh random salt into a PHC string, working in `memory`.
fn hash_in(password: &[u8], memory: &mut Vec<Block>) -> Result<String, PasswordError> {
    let salt_bytes: [u8; SALT_LEN] = rand::random();
    let salt = Salt::new(&salt_bytes).map_err(|e| PasswordError::Hashing(e.into()))?;
    let params = params();
    let output = compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        &salt,
        memory,
    )
    .map_err(PasswordError::Hashing)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(PasswordError::Hashing)?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks `password` against the PHC string `stored` with the parameters it records, working
/// in `memory`.
fn verify_in(
    password: &[u8],
    stored: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, PasswordError> {
    let bad = |e: HashError| PasswordError::BadHash(e);
    let phc = PasswordHash::new(stored).map_err(|e| bad(e.into()))?;
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(bad)?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).map_err(|e| bad(e.into()))?,
        None => Version::default(),
    };
    let params = Params::try_from(&phc).map_err(bad)?;
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return Err(bad(HashError::EncodingInvalid));
    };
    let computed = compute(algorithm, version, params, password, salt, memory)
        .map_err(PasswordError::Hashing)?;
    // `Output`'s equality is constant-time.
    Ok(&computed == expected)
}

/// Hashes `password` into a PHC string with a random salt, on the current thread. For tools
/// (such as `chatd user add`); the server uses [`PasswordHasher::hash`].
pub fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    hash_in(password, &mut Vec::new())
}

/// Checks `password` against the PHC string `stored`, on the current thread.
#[cfg(test)]
pub fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, PasswordError> {
    verify_in(password, stored, &mut Vec::new())
}

/// Working memory for argon2, kept between hashes: at most one buffer per permit exists,
/// because a buffer is only taken while a permit is held.
#[derive(Debug, Default)]
struct MemoryPool {
    free: Mutex<Vec<Vec<Block>>>,
    /// Buffers ever created (for the test that proves reuse).
    created: std::sync::atomic::AtomicUsize,
}

impl MemoryPool {
    fn with<T>(&self, work: impl FnOnce(&mut Vec<Block>) -> T) -> T {
        let taken = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut memory = taken.unwrap_or_else(|| {
            self.created
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Vec::new()
        });
        let out = work(&mut memory);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
        out
    }
}

/// How many hashes may wait for each one that runs, before more are refused
/// ([`PasswordError::Busy`]): at the default parameters a few seconds of work per CPU.
const WAITING_PER_RUNNING: usize = 64;

/// Runs argon2 on the blocking pool with bounded concurrency and a bounded queue. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Hashes waiting for a permit, at most `max_waiting`.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
    memory: Arc<MemoryPool>,
}

/// One hash counted as waiting until dropped.
struct Waiting(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordHasher::new(cpus)
    }
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` (at least 1) hashes at once, with
    /// [`WAITING_PER_RUNNING`] times as many waiting.
    pub fn new(max_concurrent: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::default(),
            max_waiting: max_concurrent.saturating_mul(WAITING_PER_RUNNING),
            memory: Arc::default(),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.waiting
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| (n < self.max_waiting).then_some(n + 1),
            )
            .map_err(|_| PasswordError::Busy)?;
        let waiting = Waiting(Arc::clone(&self.waiting));
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        drop(waiting);
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
        let memory = Arc::clone(&self.memory);
        self.run(move || memory.with(|m| hash_in(password.as_bytes(), m)))
            .await?
    }

    /// Whether `password` matches the PHC string `stored`.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, PasswordError> {
        let memory = Arc::clone(&self.memory);
        self.run(move || memory.with(|m| verify_in(password.as_bytes(), &stored, m)))
            .await?
    }

    /// Spends the time of a verification for a user that does not exist. Always `false`.
    pub async fn verify_dummy(&self, password: String) -> Result<bool, PasswordError> {
        let memory = Arc::clone(&self.memory);
        self.run(move || {
            memory.with(|m| verify_in(password.as_bytes(), DUMMY_HASH, m).map(|_| false))
        })
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

    /// Beyond the hashes that may wait, more are refused at once, and taken again once the
    /// queue moved.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hasher = PasswordHasher::new(1);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let running = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(move || held.recv()).await })
        };
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued: Vec<_> = (0..WAITING_PER_RUNNING)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.run(|| ()).await })
            })
            .collect();
        while hasher.waiting.load(Ordering::Relaxed) < WAITING_PER_RUNNING {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| ()).await, Err(PasswordError::Busy)));
        release.send(()).expect("release");
        assert!(running.await.expect("task").is_ok());
        for one in queued {
            assert!(one.await.expect("task").is_ok());
        }
        assert!(hasher.run(|| ()).await.is_ok());
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

    #[test]
    fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_blocking(b"correct horse").expect("hash");
        argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .verify_password(b"correct horse", ours.as_str())
            .expect("the argon2 crate accepts our hash");
        // A hash made elsewhere with other parameters verifies with the parameters it records.
        let light = Params::new(8, 1, 1, None).expect("params");
        let theirs = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, light)
            .hash_password(b"battery staple")
            .expect("hash")
            .to_string();
        assert!(theirs.contains("m=8,t=1,p=1"), "{theirs}");
        assert!(verify_blocking(b"battery staple", &theirs).expect("verify"));
        assert!(!verify_blocking(b"battery stapler", &theirs).expect("verify"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_reused_not_reallocated() {
        let hasher = PasswordHasher::new(2);
        let stored = hasher.hash("correct horse".into()).await.expect("hash");
        let mut checks = Vec::new();
        for i in 0..6 {
            let hasher = hasher.clone();
            let stored = stored.clone();
            checks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    hasher.verify("correct horse".into(), stored).await
                } else {
                    hasher.verify_dummy("correct horse".into()).await
                }
            }));
        }
        for (i, check) in checks.into_iter().enumerate() {
            assert_eq!(check.await.expect("join").expect("verify"), i % 2 == 0);
        }
        let created = hasher.memory.created.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&created),
            "7 hashes with 2 permits created {created} buffers"
        );
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

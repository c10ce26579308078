//! `loadgen transfer`: file transfer throughput (capability `files`). One user uploads a file of
//! `--size-mib` pseudo-random bytes from disk and downloads it again, `--rounds` times, over one
//! connection; each round's upload and download time is reported. The content is the same every
//! round (the server stores it once but receives every byte: uploads prove they have the bytes).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientConfig};
use chatproto::pb;

use crate::config::TransferArgs;
use crate::error::LoadgenError;

/// One round's times.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Round {
    /// Seconds to upload (declare, send, finish).
    pub upload_s: f64,
    /// Seconds to download to nowhere (bytes read and discarded).
    pub download_s: f64,
}

/// What a transfer run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferReport {
    /// The file size in bytes.
    pub size_bytes: u64,
    /// Every round, in order.
    pub rounds: Vec<Round>,
}

impl TransferReport {
    /// MiB/s of a duration for this file size.
    fn rate(&self, seconds: f64) -> f64 {
        self.size_bytes as f64 / 1_048_576.0 / seconds.max(f64::EPSILON)
    }

    /// One line per round.
    pub fn render(&self) -> String {
        let mut out = format!("file: {} MiB\n", self.size_bytes / 1_048_576);
        for (i, r) in self.rounds.iter().enumerate() {
            out.push_str(&format!(
                "round {}: upload {:.2} s ({:.0} MiB/s), download {:.2} s ({:.0} MiB/s)\n",
                i + 1,
                r.upload_s,
                self.rate(r.upload_s),
                r.download_s,
                self.rate(r.download_s)
            ));
        }
        out
    }
}

/// Writes `size` pseudo-random bytes (xorshift, incompressible) to a new temporary file.
fn write_content(size: u64) -> Result<PathBuf, LoadgenError> {
    let path =
        std::env::temp_dir().join(format!("loadgen-transfer-{:016x}", rand::random::<u64>()));
    let io =
        |e: std::io::Error| LoadgenError::Setup(format!("cannot write {}: {e}", path.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    let mut state = rand::random::<u64>() | 1;
    let mut left = size;
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        let n = left.min(8) as usize;
        file.write_all(&bytes[..n]).map_err(io)?;
        left -= n as u64;
    }
    file.flush().map_err(io)?;
    Ok(path)
}

/// Runs the transfer rounds.
pub async fn run(args: &TransferArgs) -> Result<TransferReport, LoadgenError> {
    let verification = crate::config::tls_mode(args.pin.clone(), None, args.insecure)?;
    if args.size_mib == 0 || args.rounds == 0 {
        return Err(LoadgenError::invalid(
            "size-mib",
            "size and rounds must be at least 1",
        ));
    }
    let size = args.size_mib * 1_048_576;
    let mut config = ClientConfig::new(args.server.clone(), verification);
    config.retry.request_timeout = Duration::from_secs(600);
    let client = Client::connect(config)
        .await
        .map_err(|e| LoadgenError::Setup(format!("cannot connect: {e}")))?;
    let name = format!("xfer_{:08x}", rand::random::<u32>());
    client
        .register(pb::Register {
            username: name.clone(),
            email: format!("{name}@loadgen.invalid"),
            password: "loadgen-transfer-password".into(),
            device_name: "loadgen transfer".into(),
        })
        .await
        .map_err(|e| LoadgenError::Setup(format!("cannot register {name}: {e}")))?;
    let path = tokio::task::spawn_blocking(move || write_content(size))
        .await
        .map_err(|e| LoadgenError::Setup(e.to_string()))??;
    let result = rounds(&client, &path, size, args.rounds).await;
    let _ = std::fs::remove_file(&path);
    client.close().await;
    result
}

async fn rounds(
    client: &Client,
    path: &std::path::Path,
    size: u64,
    count: u32,
) -> Result<TransferReport, LoadgenError> {
    let failed = |what: &str, e: chatproto::client::ClientError| {
        LoadgenError::Setup(format!("{what} failed: {e}"))
    };
    let mut report = TransferReport {
        size_bytes: size,
        rounds: Vec::new(),
    };
    for _ in 0..count {
        let started = Instant::now();
        let file = client
            .upload_path(path, pb::MessageKind::File, |_, _| {})
            .await
            .map_err(|e| failed("upload", e))?;
        let upload_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        client
            .download_to_writer(&file.id, 0, &mut tokio::io::sink(), |_, _| {})
            .await
            .map_err(|e| failed("download", e))?;
        report.rounds.push(Round {
            upload_s,
            download_s: started.elapsed().as_secs_f64(),
        });
    }
    Ok(report)
}

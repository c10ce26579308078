//! Log output: `tracing` events to standard error, as readable lines or one JSON object per
//! line, filtered by an `EnvFilter` directive string (`--log`, e.g. `info,chatd=debug`).

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::ops::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter does not parse.
    #[error("invalid log filter {filter:?}: {message}")]
    BadFilter {
        /// The filter text.
        filter: String,
        /// The parser's message.
        message: String,
    },
}

/// A subscriber writing to `writer` in `format`, keeping events that `filter` enables.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Result<Box<dyn Subscriber + Send + Sync>, LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_new(filter).map_err(|e| LoggingError::BadFilter {
        filter: filter.to_owned(),
        message: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer);
    Ok(match format {
        LogFormat::Human => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    })
}

/// Installs the global subscriber writing to standard error. Returns `Ok(false)` when one is
/// already installed (a second call, or tests), which is left in place.
pub fn init(format: LogFormat, filter: &str) -> Result<bool, LoggingError> {
    let sub = subscriber(format, filter, std::io::stderr)?;
    Ok(sub.try_init().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    /// A `MakeWriter` collecting everything written into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }

    #[test]
    fn json_lines_with_fields_and_filtering() {
        let buf = Buffer::default();
        let sub = subscriber(LogFormat::Json, "info", buf.clone()).expect("subscriber");
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("hidden by the filter");
            tracing::info!(user_id = 7, "logged in");
        });
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json line");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["fields"]["message"], "logged in");
        assert_eq!(v["fields"]["user_id"], 7);
    }

    #[test]
    fn human_lines_and_directive_filters() {
        let buf = Buffer::default();
        let sub = subscriber(LogFormat::Human, "warn,chatd=debug", buf.clone()).expect("sub");
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(target: "chatd::conn", "kept by the chatd directive");
            tracing::info!(target: "quinn", "dropped below warn");
        });
        let text = buf.text();
        assert!(text.contains("kept by the chatd directive"), "{text}");
        assert!(text.contains("DEBUG"), "{text}");
        assert!(!text.contains("dropped below warn"), "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
    }

    #[test]
    fn bad_filter_is_an_error_and_init_is_idempotent() {
        let err = init(LogFormat::Human, "chatd=loud").expect_err("bad filter");
        assert!(err.to_string().contains("chatd=loud"), "{err}");
        init(LogFormat::Human, "off").expect("init");
        // Whichever call came first in this process installed the subscriber; after that,
        // every call leaves it in place and says so.
        let again = init(LogFormat::Json, "off").expect("init again");
        assert!(!again);
    }
}

//! Server-made thumbnails of uploaded images, and the image checks that come with decoding.
//!
//! Decoding an image is CPU- and memory-heavy and an image is attacker-controlled input, so:
//! - decoding runs on the blocking pool, never on the async workers, at most
//!   [`Thumbnailer::new`]'s `workers` at once, with a bounded queue in front: when it is full,
//!   the upload is answered UNAVAILABLE (its bytes stay; finishing it later retries);
//! - every decode has limits ([`MAX_SIDE`], [`MAX_DECODE_BYTES`]): an image whose header
//!   announces more (a decompression bomb: a few KiB that would inflate to gigabytes) is
//!   refused before any pixel is allocated;
//! - only formats this build decodes (PNG, JPEG, GIF, WebP) are decoded; other images (HEIC,
//!   TIFF, ...) are stored without dimensions or thumbnails.

use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, ImageError, ImageFormat, ImageReader};
use tokio::sync::Semaphore;

/// Thumbnail sizes: the longest side in pixels, smallest first. An image gets the sizes below
/// its own longest side.
pub const THUMBNAIL_SIDES: [u32; 2] = [160, 640];
/// Largest width or height decoded.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate.
pub const MAX_DECODE_BYTES: u64 = 128 * 1024 * 1024;
/// Largest encoded image that is decoded at all; larger ones are stored without thumbnails.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

/// One thumbnail, encoded.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// JPEG (opaque images) or PNG (images with transparency).
    pub bytes: Vec<u8>,
    /// Its media type.
    pub mime: &'static str,
    /// Pixel size.
    pub width: u32,
    /// Pixel size.
    pub height: u32,
}

/// What decoding an image gave.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// The image's pixel size.
    pub width: u32,
    /// The image's pixel size.
    pub height: u32,
    /// Its thumbnails, smallest first.
    pub thumbnails: Vec<Thumbnail>,
}

/// Why an image gave no thumbnails.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// The queue is full; try again later.
    #[error("too many images are being processed")]
    Busy,
    /// The image announces more than the decode limits allow.
    #[error(
        "the image is too large to decode (at most {MAX_SIDE} pixels a side and {} MiB of pixels)",
        MAX_DECODE_BYTES / (1024 * 1024)
    )]
    TooLarge,
    /// The bytes are not a valid image of their format.
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
}

/// The format `mime` is decoded in, when this build decodes it.
pub fn decodable(mime: &str) -> Option<ImageFormat> {
    ImageFormat::from_mime_type(mime).filter(|f| {
        f.reading_enabled()
            && matches!(
                f,
                ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
            )
    })
}

/// Runs image work off the async workers, a bounded number at a time (see the module docs).
#[derive(Debug, Clone)]
pub struct Thumbnailer {
    queue: Arc<Semaphore>,
    workers: Arc<Semaphore>,
}

impl Thumbnailer {
    /// At most `workers` decodes at once and `queue` images waiting or decoding.
    pub fn new(workers: usize, queue: usize) -> Self {
        Thumbnailer {
            queue: Arc::new(Semaphore::new(queue.max(1))),
            workers: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Takes every free place in the queue until the guard drops, so that images meanwhile are
    /// answered [`ThumbError::Busy`] (tests of what clients see then).
    #[cfg(any(test, feature = "testing"))]
    pub fn fill_queue(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let free = u32::try_from(self.queue.available_permits()).ok()?;
        self.queue.clone().try_acquire_many_owned(free).ok()
    }

    /// Decodes the image in `path` (format `format`) and makes its thumbnails.
    pub async fn make(&self, path: PathBuf, format: ImageFormat) -> Result<Decoded, ThumbError> {
        let _slot = self
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| ThumbError::Busy)?;
        let _worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ThumbError::Busy)?;
        tokio::task::spawn_blocking(move || decode(&path, format))
            .await
            .map_err(|e| ThumbError::Undecodable(format!("decoder task failed: {e}")))?
    }
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn decode_error(e: ImageError) -> ThumbError {
    match e {
        ImageError::Limits(_) => ThumbError::TooLarge,
        other => ThumbError::Undecodable(other.to_string()),
    }
}

/// Decodes and thumbnails an image file. Blocking.
pub fn decode(path: &Path, format: ImageFormat) -> Result<Decoded, ThumbError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ThumbError::Undecodable(format!("cannot open the image: {e}")))?;
    let mut reader = ImageReader::with_format(BufReader::new(file), format);
    reader.limits(limits());
    let image = reader.decode().map_err(decode_error)?;
    let (width, height) = (image.width(), image.height());
    let mut thumbnails = Vec::new();
    for side in THUMBNAIL_SIDES {
        if width.max(height) <= side {
            break;
        }
        thumbnails.push(encode(&image.thumbnail(side, side))?);
    }
    Ok(Decoded {
        width,
        height,
        thumbnails,
    })
}

fn encode(image: &DynamicImage) -> Result<Thumbnail, ThumbError> {
    let mut bytes = Vec::new();
    let (mime, result) = if image.color().has_alpha() {
        (
            "image/png",
            image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png),
        )
    } else {
        (
            "image/jpeg",
            DynamicImage::ImageRgb8(image.to_rgb8())
                .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg),
        )
    };
    result.map_err(|e| ThumbError::Undecodable(format!("cannot encode a thumbnail: {e}")))?;
    Ok(Thumbnail {
        bytes,
        mime,
        width: image.width(),
        height: image.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn a_photo_gets_its_size_and_two_thumbnails() {
        let dir = tempfile::tempdir().expect("dir");
        let png = crate::files::testdata::png_image(1000, 500);
        let decoded = decode(&write(dir.path(), "a.png", &png), ImageFormat::Png).expect("decode");
        assert_eq!((decoded.width, decoded.height), (1000, 500));
        let sizes: Vec<(u32, u32, &str)> = decoded
            .thumbnails
            .iter()
            .map(|t| (t.width, t.height, t.mime))
            .collect();
        assert_eq!(
            sizes,
            vec![(160, 80, "image/jpeg"), (640, 320, "image/jpeg")]
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        let dir = tempfile::tempdir().expect("dir");
        let bomb = crate::files::testdata::png_bomb(100_000, 100_000);
        let path = write(dir.path(), "bomb.png", &bomb);
        assert!(matches!(
            decode(&path, ImageFormat::Png),
            Err(ThumbError::TooLarge)
        ));
        // Within the sides, beyond the memory: 16000 x 16000 RGBA is 1 GB of pixels.
        let wide = crate::files::testdata::png_bomb(16_000, 16_000);
        let path = write(dir.path(), "wide.png", &wide);
        assert!(matches!(
            decode(&path, ImageFormat::Png),
            Err(ThumbError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_without_decoding() {
        let thumbnailer = Thumbnailer::new(1, 1);
        let held = thumbnailer
            .queue
            .clone()
            .try_acquire_owned()
            .expect("the one slot");
        let busy = thumbnailer
            .make(PathBuf::from("/nonexistent.png"), ImageFormat::Png)
            .await;
        assert!(matches!(busy, Err(ThumbError::Busy)), "{busy:?}");
        drop(held);
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            "a.png",
            &crate::files::testdata::png_image(200, 100),
        );
        let decoded = thumbnailer
            .make(path, ImageFormat::Png)
            .await
            .expect("decoded");
        assert_eq!((decoded.width, decoded.thumbnails.len()), (200, 1));
    }

    #[test]
    fn only_this_builds_formats_are_decoded() {
        assert_eq!(decodable("image/png"), Some(ImageFormat::Png));
        assert_eq!(decodable("image/jpeg"), Some(ImageFormat::Jpeg));
        assert_eq!(decodable("image/heif"), None);
        assert_eq!(decodable("application/pdf"), None);
    }
}

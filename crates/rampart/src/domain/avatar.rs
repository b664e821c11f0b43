//! Avatar images: the three accepted media types and the check that the bytes are what the
//! client declared.
//!
//! ```
//! use rampart::domain::avatar::ImageType;
//! let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
//! assert_eq!(ImageType::parse_declared("image/png"), Some(ImageType::Png));
//! assert!(ImageType::Png.matches(png));
//! assert!(!ImageType::Jpeg.matches(png));
//! ```
//!
//! # Security
//! The declared type alone is never trusted: the magic bytes (sniffed with the `infer`
//! crate) must name the same type, so an HTML or SVG file cannot be stored as an image.
//! The image is served with its checked type, `nosniff` and a sandboxing CSP.

/// An accepted image type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// `image/webp`.
    Webp,
}

impl ImageType {
    /// Every accepted media type, for the upload route's body rule.
    pub const MEDIA_TYPES: [&'static str; 3] = ["image/png", "image/jpeg", "image/webp"];

    /// The type a `Content-Type` value declares (parameters ignored), if accepted.
    pub fn parse_declared(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        Self::parse_stored(&essence.to_ascii_lowercase())
    }

    /// Parse a stored media type.
    pub fn parse_stored(media_type: &str) -> Option<Self> {
        match media_type {
            "image/png" => Some(Self::Png),
            "image/jpeg" => Some(Self::Jpeg),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }

    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// The file extension of stored files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// Whether the magic bytes of `bytes` say this type.
    pub fn matches(self, bytes: &[u8]) -> bool {
        infer::get(bytes).is_some_and(|kind| kind.mime_type() == self.media_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn each_type_matches_its_own_magic_only() {
        for (kind, bytes) in [
            (ImageType::Png, PNG),
            (ImageType::Jpeg, JPEG),
            (ImageType::Webp, WEBP),
        ] {
            for (other, other_bytes) in [
                (ImageType::Png, PNG),
                (ImageType::Jpeg, JPEG),
                (ImageType::Webp, WEBP),
            ] {
                assert_eq!(
                    kind.matches(other_bytes),
                    kind == other,
                    "{kind:?} vs {other:?}"
                );
            }
            assert_eq!(ImageType::parse_stored(kind.media_type()), Some(kind));
            let _ = bytes;
        }
    }

    #[test]
    fn html_and_empty_bodies_match_no_image_type() {
        for bytes in [
            &b"<!doctype html><script>alert(1)</script>"[..],
            b"",
            b"GIF89a",
        ] {
            assert!(!ImageType::Png.matches(bytes));
            assert!(!ImageType::Jpeg.matches(bytes));
            assert!(!ImageType::Webp.matches(bytes));
        }
    }

    #[test]
    fn declared_types_ignore_case_and_parameters_and_refuse_others() {
        assert_eq!(
            ImageType::parse_declared("Image/PNG; q=1"),
            Some(ImageType::Png)
        );
        assert_eq!(ImageType::parse_declared("image/svg+xml"), None);
        assert_eq!(ImageType::parse_declared("image/gif"), None);
    }
}

//! The `otpauth://` URI of a TOTP enrolment as a QR code, rendered on the server as inline
//! SVG markup: no image request, no external service, no script (the page's CSP allows
//! none of them).

use qrcode::{EcLevel, QrCode, render::svg};

/// `text` as an inline `<svg>` element (without the XML declaration), or `None` when it is
/// too long for a QR code.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    // Inline SVG in HTML takes no XML declaration.
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otpauth_uri_becomes_one_inline_svg_element_without_script_or_style() {
        let svg =
            svg("otpauth://totp/Rampart:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Rampart")
                .unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        for banned in ["<script", "style=", "href", "on"] {
            if banned == "on" {
                // No event-handler attribute (`onload=` …).
                assert!(!svg.contains(" on"), "{svg}");
            } else {
                assert!(!svg.contains(banned), "{banned}");
            }
        }
    }
}

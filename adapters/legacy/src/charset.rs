//! Text encodings legacy systems send and expect: UTF-8, GBK/GB18030, Big5 and Latin-1.
//!
//! Decoding is strict: bytes that are not valid in the charset are an error, never replaced, so a wrongly
//! declared charset is reported instead of silently storing mojibake.

use encoding_rs::Encoding;
use serde::Deserialize;

/// A charset named in an adapter's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    /// UTF-8 (the default).
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK.
    Gbk,
    /// GB18030.
    Gb18030,
    /// Big5 (Traditional Chinese).
    Big5,
    /// ISO-8859-1 as browsers and PHP treat it (windows-1252).
    Latin1,
    /// Whatever the request's `Content-Type: ...; charset=` says, UTF-8 when it says nothing.
    Declared,
}

/// A byte sequence that is not valid text in the expected charset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body is not valid {charset}")]
pub struct CharsetError {
    /// The charset's name.
    pub charset: &'static str,
}

impl Charset {
    /// The concrete encoding for a request with this `Content-Type` header value.
    pub fn resolve(self, content_type: Option<&str>) -> Result<&'static Encoding, CharsetError> {
        Ok(match self {
            Self::Utf8 => encoding_rs::UTF_8,
            // The Encoding Standard decodes GBK as GB18030 (a superset); encoding as GBK keeps replies readable
            // to decoders that only know GBK.
            Self::Gbk => encoding_rs::GBK,
            Self::Gb18030 => encoding_rs::GB18030,
            Self::Big5 => encoding_rs::BIG5,
            Self::Latin1 => encoding_rs::WINDOWS_1252,
            Self::Declared => match content_type.and_then(declared_label) {
                None => encoding_rs::UTF_8,
                Some(label) => Encoding::for_label(label.as_bytes()).ok_or(CharsetError {
                    charset: "a known charset",
                })?,
            },
        })
    }
}

fn declared_label(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// Decodes `bytes` strictly.
pub fn decode(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, CharsetError> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or(CharsetError {
            charset: encoding.name(),
        })
}

/// Encodes `text` for a receiver; characters the charset cannot represent are an error.
pub fn encode(encoding: &'static Encoding, text: &str) -> Result<Vec<u8>, CharsetError> {
    let (bytes, _, unmappable) = encoding.encode(text);
    if unmappable {
        return Err(CharsetError {
            charset: encoding.output_encoding().name(),
        });
    }
    Ok(bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_round_trip_and_strictness() {
        let gbk = Charset::Gbk.resolve(None).unwrap();
        let bytes = encode(gbk, "我要退货").unwrap();
        assert_eq!(bytes, [0xCE, 0xD2, 0xD2, 0xAA, 0xCD, 0xCB, 0xBB, 0xF5]);
        assert_eq!(decode(gbk, &bytes).unwrap(), "我要退货");
        assert!(decode(gbk, &[0xCE]).is_err(), "a truncated character is an error");
        assert!(decode(encoding_rs::UTF_8, &bytes).is_err(), "GBK bytes are not UTF-8");
    }

    #[test]
    fn declared_charset_follows_the_header() {
        let enc = Charset::Declared
            .resolve(Some("application/x-www-form-urlencoded; charset=GBK"))
            .unwrap();
        assert_eq!(enc, encoding_rs::GBK);
        assert_eq!(Charset::Declared.resolve(Some("text/xml")).unwrap(), encoding_rs::UTF_8);
        assert!(Charset::Declared.resolve(Some("text/xml; charset=klingon")).is_err());
    }

    #[test]
    fn latin1_cannot_carry_chinese() {
        let latin1 = Charset::Latin1.resolve(None).unwrap();
        assert!(encode(latin1, "退货").is_err());
        assert_eq!(decode(latin1, b"caf\xe9").unwrap(), "café");
    }
}

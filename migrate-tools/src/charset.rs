//! Source charsets and their decoding to UTF-8, including the deliberate "reinterpret bytes as" used to repair
//! legacy mojibake (GBK or UTF-8 bytes stored in latin1 columns).

use encoding_rs::Encoding;
use serde::Deserialize;

/// The charsets legacy helpdesks use. MySQL's `latin1` is Windows-1252, not ISO-8859-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// utf8mb3, utf8mb4 and ascii (a subset).
    Utf8,
    /// latin1 (cp1252).
    Latin1,
    /// gbk and gb2312 (a subset).
    Gbk,
    /// gb18030.
    Gb18030,
    /// big5.
    Big5,
    /// The binary pseudo-charset: no text.
    Binary,
}

/// Bytes that are not text in the charset they are said to be in.
#[derive(Debug, thiserror::Error)]
pub enum CharsetError {
    /// Invalid bytes for the charset.
    #[error("bytes {preview} are not valid {charset:?}")]
    Invalid {
        /// The charset tried.
        charset: Charset,
        /// The first bytes, hex.
        preview: String,
    },
    /// A charset this importer does not know.
    #[error(
        "unsupported character set {0:?}; supported: utf8, utf8mb3, utf8mb4, ascii, latin1, gbk, gb2312, gb18030, big5, binary"
    )]
    Unsupported(String),
}

impl Charset {
    /// Maps a MySQL/MariaDB character set name (`utf8mb4`, `latin1`, …).
    pub fn from_mysql_name(name: &str) -> Result<Self, CharsetError> {
        match name.to_ascii_lowercase().as_str() {
            "utf8" | "utf8mb3" | "utf8mb4" | "ascii" => Ok(Self::Utf8),
            "latin1" => Ok(Self::Latin1),
            "gbk" | "gb2312" => Ok(Self::Gbk),
            "gb18030" => Ok(Self::Gb18030),
            "big5" => Ok(Self::Big5),
            "binary" => Ok(Self::Binary),
            other => Err(CharsetError::Unsupported(other.to_owned())),
        }
    }

    fn encoding(self) -> Option<&'static Encoding> {
        match self {
            Self::Utf8 => Some(encoding_rs::UTF_8),
            Self::Latin1 => Some(encoding_rs::WINDOWS_1252),
            Self::Gbk => Some(encoding_rs::GBK),
            Self::Gb18030 => Some(encoding_rs::GB18030),
            Self::Big5 => Some(encoding_rs::BIG5),
            Self::Binary => None,
        }
    }

    /// Decodes strictly: invalid bytes are an error, never U+FFFD, so a wrong charset setting is noticed.
    pub fn decode(self, bytes: &[u8]) -> Result<String, CharsetError> {
        let invalid = || CharsetError::Invalid {
            charset: self,
            preview: hex::encode(&bytes[..bytes.len().min(16)]),
        };
        match self.encoding() {
            None => String::from_utf8(bytes.to_vec()).map_err(|_| invalid()),
            Some(encoding) => encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(std::borrow::Cow::into_owned)
                .ok_or_else(invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_gbk_and_utf8_in_latin1() {
        assert_eq!(Charset::Gbk.decode(&[0xbf, 0xcd, 0xb7, 0xfe]).unwrap(), "客服");
        assert_eq!(Charset::Latin1.decode(b"caf\xe9").unwrap(), "café");
        assert_eq!(Charset::Utf8.decode("你好😀".as_bytes()).unwrap(), "你好😀");
        assert!(Charset::Utf8.decode(&[0xff]).is_err());
    }
}

//! The AES layer of compatible and safe mode: key derivation from the EncodingAESKey, and the
//! `random16 ‖ u32_be(len) ‖ msg ‖ appid` frame encrypted with AES-256-CBC and PKCS#7 padding to 32 bytes.
//!
//! This module owns the byte layout and every check on it. It never draws random bytes (the caller passes the
//! 16-byte prefix, so tests and fuzzers are deterministic) and it never authenticates anything: CBC has no MAC,
//! so callers must verify `msg_signature` *before* calling [`decrypt`], and should report every
//! [`CryptoError`] to the outside alike, so the variants cannot serve as a padding oracle.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{self, GeneralPurpose, GeneralPurposeConfig};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Length of the EncodingAESKey as the WeChat console shows it.
pub const ENCODING_AES_KEY_LEN: usize = 43;
/// Length of the random prefix in front of every encrypted message.
pub const RANDOM_PREFIX_LEN: usize = 16;
/// WeChat pads to the AES-256 key size, not the AES block size: a 16-byte PKCS#7 unpad rejects real traffic.
const PAD_BLOCK: usize = 32;
/// Random prefix plus the 4-byte length field.
const HEADER_LEN: usize = RANDOM_PREFIX_LEN + 4;

/// The key decoder must accept non-zero trailing bits: the 43rd character of real keys carries 2 spare bits,
/// and the official test key (`…ABCDEFG`) sets them, so a strict decoder refuses keys WeChat hands out.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why a key could not be derived or a message could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The EncodingAESKey does not have 43 characters.
    #[error("encoding aes key has {len} characters, expected 43")]
    KeyLength {
        /// Characters found.
        len: usize,
    },
    /// The EncodingAESKey is not base64 text.
    #[error("encoding aes key is not base64")]
    KeyBase64,
    /// The `Encrypt` text is not base64.
    #[error("ciphertext is not base64")]
    CiphertextBase64,
    /// The ciphertext is empty or not a whole number of 32-byte blocks.
    #[error("ciphertext length {len} is not a positive multiple of 32")]
    CiphertextLength {
        /// Bytes after base64 decoding.
        len: usize,
    },
    /// The last byte is not a PKCS#7 pad length in 1..=32, or the pad bytes differ.
    #[error("invalid padding")]
    Padding,
    /// Less than the 20-byte header remains after unpadding.
    #[error("decrypted frame of {len} bytes is shorter than its 20-byte header")]
    FrameTooShort {
        /// Bytes after unpadding.
        len: usize,
    },
    /// The length field announces more bytes than the frame holds.
    #[error("length field says {declared} bytes but only {available} follow")]
    MessageLength {
        /// The value of the 4-byte length field.
        declared: usize,
        /// Bytes between the header and the end of the frame.
        available: usize,
    },
    /// The AppID trailing the message is not the configured one.
    #[error("appid in the frame does not match the configured appid")]
    AppIdMismatch,
    /// The message to encrypt does not fit the 4-byte length field.
    #[error("message of {len} bytes is too long to encrypt")]
    MessageTooLong {
        /// The message's length.
        len: usize,
    },
}

/// The 32-byte AES key derived from an EncodingAESKey. Its `Debug` form never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl AesKey {
    /// Derives the key as `base64_decode(encoding_aes_key + "=")`.
    pub fn from_encoding_aes_key(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        let len = encoding_aes_key.chars().count();
        if len != ENCODING_AES_KEY_LEN {
            return Err(CryptoError::KeyLength { len });
        }
        let padded = format!("{encoding_aes_key}=");
        let bytes = KEY_ENGINE.decode(padded).map_err(|_| CryptoError::KeyBase64)?;
        // 43 base64 characters always carry 32 bytes; the conversion only fails if that arithmetic is wrong.
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyBase64)?;
        Ok(Self(key))
    }

    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The protocol fixes the IV to the first half of the key (a known weakness, but not ours to change).
    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

/// Encrypts `msg` for `app_id` and returns the base64 `Encrypt` text.
///
/// `random` must come from a CSPRNG (the caller's `OsRng`); it is the only thing that makes two encryptions of
/// the same reply differ under the fixed IV.
pub fn encrypt(
    key: &AesKey,
    app_id: &str,
    random: &[u8; RANDOM_PREFIX_LEN],
    msg: &[u8],
) -> Result<String, CryptoError> {
    let len = u32::try_from(msg.len()).map_err(|_| CryptoError::MessageTooLong { len: msg.len() })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + msg.len() + app_id.len() + PAD_BLOCK);
    frame.extend_from_slice(random);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    frame.extend_from_slice(app_id.as_bytes());
    let pad = PAD_BLOCK - frame.len() % PAD_BLOCK;
    // `pad` is in 1..=32, so it fits a byte.
    let pad_byte = u8::try_from(pad).unwrap_or(u8::MAX);
    frame.resize(frame.len() + pad, pad_byte);
    let ciphertext =
        Aes256CbcEnc::new(key.as_bytes().into(), &key.iv().into()).encrypt_padded_vec_mut::<NoPadding>(&frame);
    Ok(general_purpose::STANDARD.encode(ciphertext))
}

/// Decrypts the `Encrypt` text and returns the message bytes, after checking the block structure, the padding,
/// the length field and the trailing AppID, in that order.
///
/// Surrounding ASCII whitespace is ignored: some proxies and SDKs pretty-print the envelope, and base64 never
/// contains whitespace itself.
pub fn decrypt(key: &AesKey, app_id: &str, encrypt_text: &str) -> Result<Vec<u8>, CryptoError> {
    let ciphertext = general_purpose::STANDARD
        .decode(encrypt_text.trim_ascii())
        .map_err(|_| CryptoError::CiphertextBase64)?;
    if ciphertext.is_empty() || ciphertext.len() % PAD_BLOCK != 0 {
        return Err(CryptoError::CiphertextLength { len: ciphertext.len() });
    }
    let frame = Aes256CbcDec::new(key.as_bytes().into(), &key.iv().into())
        .decrypt_padded_vec_mut::<NoPadding>(&ciphertext)
        .map_err(|_| CryptoError::CiphertextLength { len: ciphertext.len() })?;
    let unpadded = unpad(&frame)?;
    let (header, rest) = unpadded
        .split_at_checked(HEADER_LEN)
        .ok_or(CryptoError::FrameTooShort { len: unpadded.len() })?;
    let len_field: [u8; 4] = header
        .get(RANDOM_PREFIX_LEN..)
        .and_then(|field| field.try_into().ok())
        .ok_or(CryptoError::FrameTooShort { len: unpadded.len() })?;
    let declared = usize::try_from(u32::from_be_bytes(len_field)).unwrap_or(usize::MAX);
    let (msg, trailing_app_id) = rest.split_at_checked(declared).ok_or(CryptoError::MessageLength {
        declared,
        available: rest.len(),
    })?;
    if trailing_app_id != app_id.as_bytes() {
        return Err(CryptoError::AppIdMismatch);
    }
    Ok(msg.to_vec())
}

fn unpad(frame: &[u8]) -> Result<&[u8], CryptoError> {
    let &last = frame.last().ok_or(CryptoError::Padding)?;
    let pad = usize::from(last);
    if !(1..=PAD_BLOCK).contains(&pad) || pad > frame.len() {
        return Err(CryptoError::Padding);
    }
    let (body, padding) = frame.split_at(frame.len() - pad);
    if padding.iter().any(|&b| b != last) {
        return Err(CryptoError::Padding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests;

//! The SOPS value cipher: AES-256-GCM with a 32-byte IV.
//!
//! Every leaf value is encrypted on its own with the file's data key and stored
//! as `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<t>]` (standard base64
//! with padding). The additional authenticated data is the value's path, so a
//! ciphertext cannot be moved to another key. SOPS uses Go's
//! `cipher.NewGCMWithNonceSize(aes, 32)`: a non-standard nonce length, which
//! GCM handles by hashing the IV with GHASH to derive the initial counter;
//! `aes_gcm::AesGcm<Aes256, U32>` implements the same construction.

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use zeroize::Zeroizing;

type Aes256Gcm32 = AesGcm<Aes256, U32>;

/// The type tag stored in an encrypted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Time,
    Comment,
}

impl ValueType {
    fn as_str(self) -> &'static str {
        match self {
            ValueType::Str => "str",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Bytes => "bytes",
            ValueType::Time => "time",
            ValueType::Comment => "comment",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "str" => ValueType::Str,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "bool" => ValueType::Bool,
            "bytes" => ValueType::Bytes,
            "time" => ValueType::Time,
            "comment" => ValueType::Comment,
            _ => return None,
        })
    }
}

/// Why an encrypted value could not be decrypted; mapped to `SopsError` by the caller, who knows the path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CipherError {
    Malformed(&'static str),
    Authentication,
}

/// True when the string looks like a SOPS encrypted value (used to detect comments that were encrypted).
pub(crate) fn looks_encrypted(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,") && s.ends_with(']')
}

/// Encrypts `plain` with `key`, returning the `ENC[...]` string.
pub(crate) fn encrypt(plain: &[u8], key: &[u8; 32], aad: &str, ty: ValueType) -> Result<String, &'static str> {
    let mut iv = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|_| "random number generator failed")?;
    let cipher = Aes256Gcm32::new(GenericArray::from_slice(key));
    let mut buf = Zeroizing::new(plain.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), aad.as_bytes(), &mut buf)
        .map_err(|_| "AES-GCM encryption failed")?;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
        STANDARD.encode(&buf[..]),
        STANDARD.encode(iv),
        STANDARD.encode(tag),
        ty.as_str()
    ))
}

/// Decrypts an `ENC[...]` string. The plaintext is returned in a zeroizing buffer.
pub(crate) fn decrypt(value: &str, key: &[u8; 32], aad: &str) -> Result<(Zeroizing<Vec<u8>>, ValueType), CipherError> {
    let inner = value
        .strip_prefix("ENC[AES256_GCM,data:")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or(CipherError::Malformed("not an ENC[AES256_GCM,...] value"))?;
    // Layout: <data>,iv:<iv>,tag:<tag>,type:<type>. Base64 never contains ',' so splitting is unambiguous.
    let (data, rest) = inner.split_once(",iv:").ok_or(CipherError::Malformed("missing iv"))?;
    let (iv, rest) = rest.split_once(",tag:").ok_or(CipherError::Malformed("missing tag"))?;
    let (tag, ty) = rest
        .split_once(",type:")
        .ok_or(CipherError::Malformed("missing type"))?;
    let ty = ValueType::parse(ty).ok_or(CipherError::Malformed("unknown value type"))?;
    let mut data = Zeroizing::new(
        STANDARD
            .decode(data)
            .map_err(|_| CipherError::Malformed("bad base64 in data"))?,
    );
    let iv = STANDARD
        .decode(iv)
        .map_err(|_| CipherError::Malformed("bad base64 in iv"))?;
    let tag = STANDARD
        .decode(tag)
        .map_err(|_| CipherError::Malformed("bad base64 in tag"))?;
    if iv.len() != 32 {
        return Err(CipherError::Malformed("iv is not 32 bytes"));
    }
    if tag.len() != 16 {
        return Err(CipherError::Malformed("tag is not 16 bytes"));
    }
    let cipher = Aes256Gcm32::new(GenericArray::from_slice(key));
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(&iv),
            aad.as_bytes(),
            &mut data,
            GenericArray::from_slice(&tag),
        )
        .map_err(|_| CipherError::Authentication)?;
    Ok((data, ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_binding() {
        let key = [7u8; 32];
        let enc = encrypt(b"hunter2", &key, "a:b:", ValueType::Str).unwrap();
        assert!(looks_encrypted(&enc));
        let (plain, ty) = decrypt(&enc, &key, "a:b:").unwrap();
        assert_eq!(&plain[..], b"hunter2");
        assert_eq!(ty, ValueType::Str);
        assert_eq!(decrypt(&enc, &key, "a:c:").unwrap_err(), CipherError::Authentication);
        assert_eq!(
            decrypt(&enc, &[8u8; 32], "a:b:").unwrap_err(),
            CipherError::Authentication
        );
    }

    #[test]
    fn malformed_values() {
        let key = [7u8; 32];
        for bad in [
            "ENC[AES256_GCM,data:!!,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAA]",
            "ENC[AES256_GCM,data:",
            "plain",
            "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:nope]",
        ] {
            assert!(
                matches!(decrypt(bad, &key, ""), Err(CipherError::Malformed(_))),
                "{bad}"
            );
        }
    }
}

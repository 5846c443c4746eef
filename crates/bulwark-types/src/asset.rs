//! Asset codes: the short upper-case names of underlyings (`BTC`, `ETH`, `1000PEPE`).

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};

/// Longest asset code accepted, in bytes.
pub const ASSET_CODE_LEN_MAX: usize = 10;

/// Why a string is not an asset code.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssetCodeError {
    #[error("asset code is empty")]
    Empty,
    #[error("asset code is longer than {ASSET_CODE_LEN_MAX} characters")]
    TooLong,
    #[error("asset code may hold only A-Z and 0-9")]
    BadCharacter,
    #[error("asset code needs at least one letter")]
    NoLetter,
}

/// The name of an underlying asset: 1 to 10 characters of `A-Z0-9`, at least one a letter.
/// Ordered as its string is.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetCode {
    // Zero-padded so that derived ordering equals string ordering.
    bytes: [u8; ASSET_CODE_LEN_MAX],
    len: u8,
}

impl AssetCode {
    pub fn parse(code: &str) -> Result<Self, AssetCodeError> {
        let raw = code.as_bytes();
        if raw.is_empty() {
            return Err(AssetCodeError::Empty);
        }
        if raw.len() > ASSET_CODE_LEN_MAX {
            return Err(AssetCodeError::TooLong);
        }
        if !raw
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(AssetCodeError::BadCharacter);
        }
        if !raw.iter().any(u8::is_ascii_uppercase) {
            return Err(AssetCodeError::NoLetter);
        }
        let mut bytes = [0u8; ASSET_CODE_LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            bytes,
            len: raw.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("validated as ASCII")
    }
}

impl std::fmt::Display for AssetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for AssetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssetCode({})", self.as_str())
    }
}

impl std::str::FromStr for AssetCode {
    type Err = AssetCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Write for AssetCode {
    fn write(&self, buf: &mut impl BufMut) {
        self.len.write(buf);
        buf.put_slice(&self.bytes[..usize::from(self.len)]);
    }
}

impl EncodeSize for AssetCode {
    fn encode_size(&self) -> usize {
        1 + usize::from(self.len)
    }
}

impl Read for AssetCode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let len = usize::from(u8::read(buf)?);
        if len == 0 || len > ASSET_CODE_LEN_MAX {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut raw = [0u8; ASSET_CODE_LEN_MAX];
        buf.copy_to_slice(&mut raw[..len]);
        let text = std::str::from_utf8(&raw[..len])
            .map_err(|_| CodecError::Invalid("AssetCode", "not ASCII"))?;
        Self::parse(text).map_err(|_| CodecError::Invalid("AssetCode", "not A-Z0-9 with a letter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt, Encode};

    #[test]
    fn asset_codes_order_as_strings() {
        let a = AssetCode::parse("BTC").unwrap();
        let b = AssetCode::parse("BTCX").unwrap();
        let c = AssetCode::parse("ETH").unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn asset_code_rejects_bad_text() {
        assert_eq!(AssetCode::parse(""), Err(AssetCodeError::Empty));
        assert_eq!(AssetCode::parse("btc"), Err(AssetCodeError::BadCharacter));
        assert_eq!(AssetCode::parse("12345"), Err(AssetCodeError::NoLetter));
        assert_eq!(
            AssetCode::parse("ABCDEFGHIJK"),
            Err(AssetCodeError::TooLong)
        );
        assert!(AssetCode::parse("1000PEPE").is_ok());
    }

    #[test]
    fn asset_code_decoder_refuses_lowercase_and_zero_length() {
        let code = AssetCode::parse("ETH").unwrap();
        assert_eq!(AssetCode::decode(code.encode()).unwrap(), code);
        assert!(AssetCode::decode(Copying(&[3u8, b'e', b't', b'h'])).is_err());
        assert!(AssetCode::decode(Copying(&[0u8])).is_err());
        assert!(AssetCode::decode(Copying(&[11u8; 12])).is_err());
    }
}

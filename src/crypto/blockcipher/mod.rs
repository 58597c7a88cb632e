//! Layer block ciphers. ocicrypt defines one: `AES_256_CTR_HMAC_SHA256`.

pub mod aes_ctr_hmac;
mod pipeline;

pub use aes_ctr_hmac::{decrypt, encrypt, DecryptReader, StreamDigests, HMAC_LEN, HOLD_BACK};

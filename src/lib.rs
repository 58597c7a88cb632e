//! rrun: a daemonless container runtime with ocicrypt image encryption built in.
//!
//! The library holds everything but the command line: `crypto` (the ocicrypt layer format and
//! key wrapping) and `image` (OCI layouts, manifests, image-level encrypt and decrypt). Only
//! `image` may import `crypto`; see DESIGN.md section 1.

pub mod crypto;
pub mod image;
pub mod trust;

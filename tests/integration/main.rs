//! Integration tests: rrun against the real peers (skopeo), one module per area.
mod unpack_root;

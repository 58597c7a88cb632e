//! Integration tests: rrun against the real peers (skopeo), one module per area.

mod store;
mod store_util;

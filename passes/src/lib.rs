//! Graph passes. Fusion (egg equality saturation) lands here; see issue 3.
#![forbid(unsafe_code)]

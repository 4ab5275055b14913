//! kiln_core: the asset model, configuration, diagnostics and the pipeline stages that do not
//! depend on any codec.
//!
//! The build is a pipeline of stages, each in a module of the same name, each taking the previous
//! stage's output by value (see `ARCHITECTURE.md` at the repository root):
//!
//! 1. [`discover`]: walk the source root, read every file, classify it.
//! 2. [`transform`]: per-asset, parallel, pure bytes-in/bytes-out work done by a [`Transformer`]
//!    (CSS, JS and images live in their own crates and plug in here); references to other assets are
//!    left as placeholders.
//! 3. [`link`]: resolve references, hash (cycle-safe), substitute final URLs, fix source maps.
//! 4. [`emit`]: write fingerprinted files atomically, keep earlier builds' files, clean up old ones.
//! 5. [`manifest`]: write kiln's, Django's and Flask's manifests, last and atomically.
//!
//! The data that flows between the stages lives in [`model`], which every stage imports and which
//! imports no stage; the modules of this crate import each other in one direction only.
//!
//! This crate does no minification or image work itself and has no CLI concerns.

pub mod cache;
pub mod compress;
pub mod config;
pub mod diagnostic;
pub mod discover;
pub mod emit;
mod fsutil;
pub mod globs;
pub mod index;
mod integrity;
pub mod link;
pub mod lock;
pub mod manifest;
mod memo;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod srcmap;
pub mod text;
pub mod transform;
pub mod url;

pub use config::{Config, ConfigError, ManifestFormat};
pub use diagnostic::{Diagnostic, Severity};
pub use model::{
    Asset, AssetId, AssetKind, ImageInfo, RefKind, RefSyntax, Reference, TransformOutput, VERSION,
    Variant,
};
pub use pipeline::{BuildError, Progress, build, build_with_remote};
pub use report::BuildReport;
pub use transform::{TransformInput, Transformer};

pub use bytes::Bytes;

//! The `excite` crate: the façade users call from Rust, and the library behind the `excite` CLI.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use excite::{Backend, Session, Tensor};
//!
//! let graph = excite::load("model.onnx".as_ref())?;          // or a `.seir` file
//! let session = Session::new(graph, Backend::best_available())?;
//! let x = Tensor::new(vec![1, 3, 224, 224], vec![0.5; 3 * 224 * 224])?;
//! let outputs = session.run(&HashMap::from([("input".to_string(), x)]))?;
//! for (name, t) in &outputs {
//!     println!("{name}: {:?}", t.shape());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod inspect;
pub mod npy;

use std::path::{Path, PathBuf};

pub use excite_ir::{self as ir, Graph, Tensor};
pub use excite_onnx::{self as onnx, ImportOptions};
pub use excite_runtime::{Backend, RuntimeError, Session};
pub use excite_zoo as zoo;

/// Errors of loading a model file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}`: unknown model format (expected a .onnx or .seir file)")]
    UnknownFormat { path: PathBuf },
    #[error("`{path}`: {source}")]
    Onnx {
        path: PathBuf,
        source: excite_onnx::OnnxError,
    },
    #[error("`{path}`: {source}")]
    Seir {
        path: PathBuf,
        source: excite_ir::IrError,
    },
    #[error("`{path}`: {source}")]
    Verify {
        path: PathBuf,
        source: excite_ir::IrErrors,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and verifies a model: an ONNX file, or a `.seir` text file whose weights are in the
/// `.safetensors` file of the same stem beside it.
pub fn load(path: &Path) -> Result<Graph, LoadError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "onnx" => {
            let bytes = read(path)?;
            excite_onnx::import(&bytes, &ImportOptions::default()).map_err(|source| {
                LoadError::Onnx {
                    path: path.to_path_buf(),
                    source,
                }
            })
        }
        "seir" => {
            let text = read(path)?;
            let text = String::from_utf8_lossy(&text);
            let wpath = path.with_extension("safetensors");
            let store = if wpath.exists() {
                let bytes = read(&wpath)?;
                excite_ir::text::WeightStore::from_safetensors(&bytes).map_err(|source| {
                    LoadError::Seir {
                        path: wpath.clone(),
                        source,
                    }
                })?
            } else {
                excite_ir::text::WeightStore::default()
            };
            let mut g =
                excite_ir::text::parse(&text, &store).map_err(|source| LoadError::Seir {
                    path: path.to_path_buf(),
                    source,
                })?;
            excite_ir::text::verify_declared(&mut g).map_err(|source| LoadError::Verify {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(g)
        }
        _ => Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Writes `g` as `DIR/STEM.seir` + `DIR/STEM.safetensors`; returns the `.seir` path.
pub fn save_seir(g: &Graph, dir: &Path, stem: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let seir = dir.join(format!("{stem}.seir"));
    std::fs::write(&seir, excite_ir::text::print(g))?;
    let store = excite_ir::text::WeightStore::from_graph(g);
    std::fs::write(
        dir.join(format!("{stem}.safetensors")),
        store.to_safetensors()?,
    )?;
    Ok(seir)
}

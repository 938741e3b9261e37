//! Finds module import cycles in a crate: two files importing each other, directly or around a loop (issue 16).
//!
//! The crate's module tree is loaded the way rustc loads it (`mod a;` → `a.rs` or `a/mod.rs`, `#[path]`, inline
//! modules belong to their file), leaving out everything under `#[cfg(test)]`. Each *file* is a node. Every
//! crate-internal path a file names is resolved to the file that defines the named item, following re-exports
//! (`pub use child::Item;`, globs), and becomes an edge. Cycles are the graph's strongly connected components of
//! more than one file, each reported with one example path (file:line) per edge.
//!
//! # Layout
//! - `tree`: loading the module tree, and what each module defines and imports.
//! - `resolve`: resolving a path in a module to the module or file it leads to.
//! - `edges`: walking each file's `use` items, code and macro arguments for paths; one edge per file pair.
//! - `report`: [`Report`], its cycles, and its human and `dot` forms.

mod edges;
mod report;
mod resolve;
mod tree;

use std::path::Path;

pub use report::{Cycle, Edge, Report};
pub use tree::Error;

/// Loads the module tree rooted at `root` (a crate root file such as `src/lib.rs`) and reports its file graph
/// and import cycles.
///
/// # Errors
/// A module file that cannot be read or parsed, or a `mod name;` with no file.
pub fn check_crate(root: &Path) -> Result<Report, Error> {
    let tree = tree::Tree::load(root)?;
    let edges = edges::collect(&tree);
    let files = tree.files.into_iter().map(|f| f.path).collect();
    Ok(Report::new(files, edges))
}

#[cfg(test)]
mod tests;

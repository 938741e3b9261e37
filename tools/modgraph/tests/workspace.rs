//! The checker over every crate root of the workspace (issue 16: no module import cycles).

use std::fs;
use std::path::{Path, PathBuf};

use protofuse_modgraph::{Report, check_crate};

/// Every `src/lib.rs` and `src/main.rs` of the root manifest's `workspace.members`.
fn crate_roots() -> (PathBuf, Vec<PathBuf>) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let manifest: toml::Table = fs::read_to_string(workspace.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = manifest["workspace"]["members"].as_array().expect("workspace.members");
    let roots = (members.iter())
        .map(|member| workspace.join(member.as_str().expect("a member path")))
        .flat_map(|member| ["src/lib.rs", "src/main.rs"].map(|root| member.join(root)))
        .filter(|root| root.is_file())
        .collect();
    (workspace, roots)
}

fn reports() -> Vec<Report> {
    let (workspace, roots) = crate_roots();
    assert!(roots.len() >= 8, "found only {roots:?}");
    let check = |root: PathBuf| match check_crate(&root) {
        Ok(report) => report.relative_to(&workspace),
        Err(error) => panic!("{}: {error}", root.display()),
    };
    roots.into_iter().map(check).collect()
}

/// Runs in CI even while cycles remain: every crate root loads, so the checker keeps up with the code.
#[test]
fn every_crate_root_loads() {
    for report in reports() {
        assert!(
            report.files.len() > 1 || report.files[0].ends_with("main.rs"),
            "{report}"
        );
    }
}

#[test]
fn no_module_import_cycles() {
    let failures: String = reports()
        .iter()
        .filter(|r| !r.cycles.is_empty())
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "module import cycles (issue 16):\n{failures}");
}

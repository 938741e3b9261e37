//! The checker over small fixture crates written into a temporary directory.

use std::fs;

use crate::{Error, Report, check_crate};

/// Writes `files` (paths relative to the crate root's directory) and checks the crate rooted at `lib.rs`.
fn check(files: &[(&str, &str)]) -> Result<Report, Error> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    Ok(check_crate(&dir.path().join("lib.rs"))?.relative_to(dir.path()))
}

/// `from -> to @line path` for every edge.
fn edges(report: &Report) -> Vec<String> {
    let file = |i: usize| report.files[i].display().to_string();
    let edges = report.edges.iter();
    edges
        .map(|e| format!("{} -> {} @{} {}", file(e.from), file(e.to), e.line, e.path))
        .collect()
}

fn cycles(report: &Report) -> Vec<Vec<String>> {
    let files = |c: &crate::Cycle| c.files.iter().map(|&i| report.files[i].display().to_string()).collect();
    report.cycles.iter().map(files).collect()
}

#[test]
fn two_files_importing_each_other_are_a_cycle() {
    let report = check(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
        (
            "b.rs",
            "pub struct B;\n\npub fn make() -> crate::a::A {\n    crate::a::A(B)\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(
        edges(&report),
        ["a.rs -> b.rs @1 crate::b::B", "b.rs -> a.rs @3 crate::a::A"]
    );
    assert_eq!(cycles(&report), [["a.rs", "b.rs"]]);
    assert_eq!(report.cycles[0].edges, [0, 1]);
    let text = report.to_string();
    assert!(text.contains("a.rs -> b.rs   (a.rs:1 `crate::b::B`)"), "{text}");
    assert!(
        report
            .to_dot()
            .contains("\"b.rs\" -> \"a.rs\" [tooltip=\"crate::a::A:3\", color=red];")
    );
}

#[test]
fn three_files_around_a_loop_are_one_cycle() {
    let report = check(&[
        ("lib.rs", "pub mod net;\n"),
        ("net/mod.rs", "mod a;\nmod b;\nmod c;\n"),
        // A module import adds no edge of its own when code names items through it: `b::b` leads to b.rs.
        ("net/a.rs", "use super::b;\n\npub fn a() {\n    b::b();\n}\n"),
        (
            "net/b.rs",
            "pub fn b() {\n    let _ = format!(\"{}\", super::c::C);\n}\n",
        ),
        (
            "net/c.rs",
            "use crate::net::a::*;\n\npub struct C;\n\nfn f() {\n    a();\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(
        edges(&report),
        [
            "net/a.rs -> net/b.rs @4 b::b",
            "net/b.rs -> net/c.rs @2 super::c::C",
            "net/c.rs -> net/a.rs @6 a"
        ]
    );
    assert_eq!(cycles(&report), [["net/a.rs", "net/b.rs", "net/c.rs"]]);
    assert_eq!(report.cycles[0].edges.len(), 3);
}

#[test]
fn paths_in_macro_arguments_and_bodies_count() {
    let report = check(&[
        ("lib.rs", "mod a;\nmod b;\nmod m;\n"),
        ("a.rs", "pub struct A;\npub mod inner;\n"),
        ("a/inner.rs", "pub struct Deep;\n"),
        ("b.rs", "pub const NAME: &str = \"b\";\n"),
        (
            "m.rs",
            "macro_rules! make {\n    () => {\n        use $crate::a::{A, inner::Deep};\n    };\n}\n\n\
             fn f() -> String {\n    format!(\"{}\", crate::b::NAME)\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(
        edges(&report),
        [
            "m.rs -> a.rs @3 crate::a::A",
            "m.rs -> a/inner.rs @3 crate::a::inner::Deep",
            "m.rs -> b.rs @8 crate::b::NAME"
        ]
    );
}

#[test]
fn a_name_re_exported_by_the_parent_leads_to_the_defining_file() {
    let report = check(&[
        ("lib.rs", "mod errors;\n"),
        (
            "errors/mod.rs",
            "mod child;\nmod sibling;\npub use child::Error;\npub use self::child::{Kind, Other as Renamed};\n\
             pub fn run() -> Result<(), Error> {\n    sibling::go()\n}\n",
        ),
        ("errors/child.rs", "pub struct Error;\npub enum Kind {\n    A,\n}\npub struct Other;\n"),
        (
            "errors/sibling.rs",
            "use super::{Error, Kind, Renamed};\n\npub fn go() -> Result<(), Error> {\n    let _ = (Kind::A, Renamed);\n    Ok(())\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(
        edges(&report),
        [
            "errors/mod.rs -> errors/child.rs @3 child::Error",
            "errors/mod.rs -> errors/sibling.rs @6 sibling::go",
            "errors/sibling.rs -> errors/child.rs @1 super::Error",
        ]
    );
    assert!(report.cycles.is_empty(), "{report}");
}

#[test]
fn a_glob_re_export_is_followed_too() {
    let report = check(&[
        ("lib.rs", "mod api;\nmod user;\n"),
        (
            "api/mod.rs",
            "mod types;\npub use types::*;\n\npub fn serve() {\n    crate::user::login();\n}\n",
        ),
        ("api/types.rs", "pub struct Token;\n"),
        (
            "user.rs",
            "pub fn login() -> crate::api::Token {\n    crate::api::Token\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(
        edges(&report),
        [
            "api/mod.rs -> api/types.rs @2 types::*",
            "api/mod.rs -> user.rs @5 crate::user::login",
            "user.rs -> api/types.rs @1 crate::api::Token"
        ]
    );
    assert!(report.cycles.is_empty(), "{report}");
}

#[test]
fn everything_under_cfg_test_is_ignored() {
    let a = "pub struct S;\n\npub fn a() {}\n\n#[cfg(test)]\nmod tests;\n\n#[cfg(test)]\nmod inline_tests {\n    use crate::b::*;\n}\n\n\
             #[cfg(all(test, feature = \"x\"))]\nfn helper() {\n    crate::b::b();\n}\n\n\
             impl S {\n    #[cfg(test)]\n    fn t() {\n        crate::b::b();\n    }\n}\n";
    let b = "pub fn b() {\n    crate::a::a();\n}\n";
    let report = check(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", a), ("b.rs", b)]).unwrap();
    assert_eq!(edges(&report), ["b.rs -> a.rs @2 crate::a::a"]);
    assert!(report.cycles.is_empty(), "{report}");

    let a = format!("{a}\n#[cfg(not(test))]\nfn real() {{\n    crate::b::b();\n}}\n");
    let report = check(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", &a), ("b.rs", b)]).unwrap();
    assert_eq!(cycles(&report), [["a.rs", "b.rs"]]);
}

#[test]
fn path_attributes_and_nested_files_are_loaded_like_rustc() {
    let report = check(&[
        (
            "lib.rs",
            "#[path = \"weird/name.rs\"]\nmod a;\nmod b;\nmod outer {\n    #[path = \"deep.rs\"]\n    mod deep;\n}\n",
        ),
        // A `#[path]` file owns its directory, like `mod.rs`.
        ("weird/name.rs", "pub mod inner;\n"),
        ("weird/inner.rs", "pub struct X;\n\nuse crate::b::Y;\n"),
        // A non-`mod.rs` file's children live in a directory named after it.
        ("b.rs", "mod c;\npub struct Y;\n\nfn f(_: crate::a::inner::X) {}\n"),
        ("b/c.rs", "use super::super::b::Y;\n"),
        ("outer/deep.rs", "pub fn deep() {}\n"),
    ])
    .unwrap();
    let files: Vec<_> = report.files.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        files,
        [
            "lib.rs",
            "weird/name.rs",
            "weird/inner.rs",
            "b.rs",
            "b/c.rs",
            "outer/deep.rs"
        ]
    );
    assert_eq!(cycles(&report), [["weird/inner.rs", "b.rs"]]);
    assert!(edges(&report).contains(&"b/c.rs -> b.rs @1 super::super::b::Y".to_owned()));
}

#[test]
fn an_unresolved_name_falls_back_to_the_deepest_module_file() {
    let report = check(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "pub mod made {}\n"),
        (
            "b.rs",
            "fn f() {\n    crate::a::made::by_macro();\n    crate::a::Missing::new();\n}\n",
        ),
    ])
    .unwrap();
    assert_eq!(edges(&report), ["b.rs -> a.rs @2 crate::a::made::by_macro"]);
}

#[test]
fn visibilities_and_ownership_are_no_imports() {
    let report = check(&[
        ("lib.rs", "mod a;\n"),
        (
            "a.rs",
            "pub(crate) struct S {\n    pub(in crate::a) x: u8,\n}\npub(super) fn f() {}\n",
        ),
    ])
    .unwrap();
    assert!(report.edges.is_empty(), "{:?}", edges(&report));
}

#[test]
fn a_missing_module_file_is_an_error() {
    let error = check(&[("lib.rs", "\nmod gone;\n")]).unwrap_err();
    assert!(
        matches!(&error, Error::MissingModule { line: 2, name, .. } if name == "gone"),
        "{error}"
    );
}

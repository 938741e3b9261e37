//! `protofuse-modgraph [--dot] <crate-root-file>...`: prints each crate's module import cycles (or, with `--dot`,
//! its file graph in Graphviz form) and exits 1 if any crate has a cycle, 2 on a usage or loading error.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dot = args.iter().any(|a| a == "--dot");
    let roots: Vec<&String> = args.iter().filter(|a| *a != "--dot").collect();
    if roots.is_empty() || roots.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: protofuse-modgraph [--dot] <crate-root-file>...   (e.g. src/lib.rs src/main.rs)");
        return ExitCode::from(2);
    }
    let mut cycles = false;
    for root in roots {
        match protofuse_modgraph::check_crate(Path::new(root)) {
            Ok(report) => {
                cycles |= !report.cycles.is_empty();
                if dot {
                    print!("{}", report.to_dot());
                } else {
                    print!("{report}");
                }
            }
            Err(error) => {
                match std::error::Error::source(&error) {
                    Some(source) => eprintln!("protofuse-modgraph: {error}: {source}"),
                    None => eprintln!("protofuse-modgraph: {error}"),
                }
                return ExitCode::from(2);
            }
        }
    }
    if cycles { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

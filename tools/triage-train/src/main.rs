//! The `protofuse-triage-train` binary: parses the command line, runs training (or one of its cross-validation
//! modes) and prints the result. Errors are reported here, with their causes, and turned into a non-zero exit
//! status (anyhow lives only here). Must never hold training logic: that is the library's.

use std::path::PathBuf;

use clap::Parser;

/// Train the triage intent model from the data directory and write model.onnx, metrics.json and MODEL_CARD.md.
#[derive(Debug, Parser)]
#[command(name = "protofuse-triage-train")]
struct Args {
    /// Directory of *.jsonl files with {"text", "intent", "lang", "group"}.
    #[arg(long, default_value = "config/triage/data")]
    data: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "config/triage")]
    out: PathBuf,
    /// Instead of training, print the grouped cross-validation table of the hyperparameter grid (training
    /// split only) and the winning settings; writes nothing.
    #[arg(long)]
    search: bool,
    /// Instead of training, print the grouped cross-validation accuracy of the current settings and
    /// features (training split only, seconds); writes nothing.
    #[arg(long, conflicts_with = "search")]
    cv: bool,
    /// Like `--cv`, and write the out-of-fold misclassifications to FILE as JSONL ({"text", "intent",
    /// "predicted", "confidence", "group", "lang"}) for writing new seeds; writes no model.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["search", "cv"])]
    cv_errors: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = args.cv_errors {
        print!("{}", protofuse_triage_train::cv_errors(&args.data, &file)?);
    } else if args.cv {
        print!("{}", protofuse_triage_train::cross_validate(&args.data)?);
    } else if args.search {
        let table = protofuse_triage_train::search(&args.data, |row| {
            eprintln!(
                "dim 2^{} lr {} l2 {:e} epochs {}: en {:.4} zh {:.4}",
                row.dim.trailing_zeros(),
                row.sgd.learning_rate,
                row.sgd.l2,
                row.sgd.epochs,
                row.en,
                row.zh
            );
        })?;
        print!("{table}");
    } else {
        let metrics = protofuse_triage_train::train(&args.data, &args.out)?;
        print!("{}", protofuse_triage_train::summary(&metrics));
        println!("wrote {}/model.onnx, metrics.json, MODEL_CARD.md", args.out.display());
    }
    Ok(())
}

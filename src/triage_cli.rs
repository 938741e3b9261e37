//! `protofuse triage`: one message's decision and why, and `eval` on a labelled file. Must never train:
//! training is the separate `protofuse-triage-train` tool, which the server binary does not link.

use std::path::{Path, PathBuf};

use protofuse_triage::eval::{Confusion, EvalError, read_jsonl};
use protofuse_triage::{Action, ConversationContext, Decision, Triage, TriageError};
use serde_json::{Value, json};

use crate::config::{self, ConfigError};

/// `protofuse triage [TEXT | eval FILE]`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TriageArgs {
    /// `eval`; without it, triage TEXT.
    #[command(subcommand)]
    pub action: Option<TriageAction>,
    /// The customer message to triage.
    pub text: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration file (its `[triage]` section); built-in defaults without it.
    #[arg(long, short, env = "PROTOFUSE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The `triage` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TriageAction {
    /// Accuracy, macro-F1 and confusion matrix of the configured triage on a JSONL file of {"text", "intent"}.
    Eval {
        /// The labelled file.
        file: PathBuf,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
        /// Also print every misclassified example (text mode).
        #[arg(long)]
        errors: bool,
        /// Configuration file (its `[triage]` section).
        #[arg(long, short, env = "PROTOFUSE_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Why a triage command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The model or knowledge base could not be loaded.
    #[error(transparent)]
    Triage(#[from] TriageError),
    /// The labelled file could not be read.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Neither a text nor a subcommand.
    #[error("give a message to triage, or `eval FILE`")]
    Usage,
    /// The message is empty or whitespace only: there is nothing to judge.
    #[error("the message is empty or only whitespace: there is nothing to triage")]
    BlankText,
    /// The labelled file names intents the model does not know (a typo would otherwise add a column and skew
    /// every figure).
    #[error("{file}: intents the model does not know: {found} (the model knows: {known})")]
    UnknownLabels {
        /// The file.
        file: String,
        /// Each unknown intent with the first line naming it.
        found: String,
        /// The model's intents.
        known: String,
    },
}

/// Runs the command and prints its result.
pub fn run(args: TriageArgs) -> Result<(), CommandError> {
    match args.action {
        Some(TriageAction::Eval {
            file,
            json,
            errors,
            config,
        }) => eval(&load(config.as_deref())?, &file, json, errors),
        None => {
            let text = args.text.ok_or(CommandError::Usage)?;
            if protofuse_triage::features::is_blank(&text) {
                return Err(CommandError::BlankText);
            }
            let decision = load(args.config.as_deref())?.triage(&text, &ConversationContext::default());
            if args.json {
                println!("{}", decision_json(&decision));
            } else {
                print!("{}", explain(&decision));
            }
            Ok(())
        }
    }
}

fn load(config: Option<&Path>) -> Result<Triage, CommandError> {
    Ok(Triage::load(&config::load(config)?.triage)?)
}

/// The decision as one flat JSON object: `decision` is the kind, `action` carries its details.
pub fn decision_json(decision: &Decision) -> Value {
    let mut value = serde_json::to_value(decision).unwrap_or_default();
    let action = value["decision"].take();
    value["decision"] = action["kind"].clone();
    value["action"] = action;
    value
}

fn explain(d: &Decision) -> String {
    let action = match &d.decision {
        Action::BotAnswer {
            entry,
            answer,
            similarity,
        } => {
            format!("bot_answer (knowledge base `{entry}`, similarity {similarity:.2}): {answer}")
        }
        Action::Suggest { questions } => format!("suggest: {}", questions.join(" | ")),
        Action::DefaultReply { text } => format!("default_reply: {text}"),
        Action::Handoff { reason } => format!("handoff ({})", serde_json::to_value(reason).unwrap_or_default()),
    };
    let top: Vec<String> = d
        .top_intents
        .iter()
        .map(|s| format!("{} {:.3}", s.intent, s.score))
        .collect();
    format!(
        "intent:      {} (confidence {:.3})\ndepartment:  {}\ndecision:    {action}\nwhy:         {}\ntop intents: {}\nmodel:       {}\n",
        d.intent,
        d.confidence,
        d.department,
        if d.reason == "model" {
            "model".to_owned()
        } else {
            d.reason.clone()
        },
        top.join(", "),
        d.model_version
    )
}

fn eval(triage: &Triage, file: &Path, json: bool, errors: bool) -> Result<(), CommandError> {
    let examples = read_jsonl(file)?;
    let mut labels: Vec<String> = triage.model().labels().to_vec();
    let mut unknown: Vec<String> = Vec::new();
    for (line, e) in examples.iter().enumerate() {
        if !labels.contains(&e.intent) && !unknown.iter().any(|u| u.starts_with(&format!("\"{}\" ", e.intent))) {
            unknown.push(format!("\"{}\" (example {})", e.intent, line + 1));
        }
    }
    if !unknown.is_empty() {
        return Err(CommandError::UnknownLabels {
            file: file.display().to_string(),
            found: unknown.join(", "),
            known: labels.join(", "),
        });
    }
    let decided: Vec<(String, String)> = examples
        .iter()
        .map(|e| {
            (
                e.intent.clone(),
                triage.triage(&e.text, &ConversationContext::default()).intent,
            )
        })
        .collect();
    for (truth, predicted) in &decided {
        for label in [truth, predicted] {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
    }
    let index = |l: &String| labels.iter().position(|x| x == l).unwrap_or_default();
    let mut confusion = Confusion::new(&labels);
    for (truth, predicted) in &decided {
        confusion.add(index(truth), index(predicted));
    }
    let figures = confusion.figures(None);
    if errors && !json {
        for (e, (truth, predicted)) in examples.iter().zip(&decided).filter(|(_, (t, p))| t != p) {
            println!("{truth:>10} → {predicted:<10} {}", e.text);
        }
    }
    if json {
        let out = json!({
            "file": file.display().to_string(),
            "examples": figures.examples,
            "accuracy": figures.accuracy,
            "macro_f1": figures.macro_f1,
            "human_precision": figures.human_precision,
            "labels": labels,
            "confusion": confusion.counts,
            "model_version": triage.model().version(),
        });
        println!("{out}");
    } else {
        println!(
            "{}: {} examples\naccuracy {:.4}\nmacro-F1 {:.4}\nhuman precision {:.4}\n\n{}",
            file.display(),
            figures.examples,
            figures.accuracy,
            figures.macro_f1,
            figures.human_precision,
            confusion.table()
        );
    }
    Ok(())
}

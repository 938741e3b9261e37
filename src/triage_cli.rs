//! `protofuse triage`: one message's decision and why, `eval` on a labelled file, and `train --from-store`: a
//! department router trained on the store's own history. The intent model is trained by the separate
//! `protofuse-triage-train` tool from the seed files; the router is trained here because its data is the
//! operator's store, which this binary already knows how to open (the training itself is that tool's library).

use std::path::{Path, PathBuf};

use protofuse_model::Content;
use protofuse_model::HandoffReason;
use protofuse_store::{PageRequest, StoreConfig, StoreError};
use protofuse_triage::eval::{self, Confusion, EvalError, read_jsonl};
use protofuse_triage::{Action, ConversationContext, Decision, Routed, Triage, TriageError};
use protofuse_triage_train::{Labelled, RouterOptions, TrainError};
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
    /// Accuracy, macro-F1, confusion matrix, calibration (ECE and reliability table) and the low-confidence
    /// hand-offs of the configured triage on a JSONL file of {"text", "intent"}.
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
    /// Train a department router on a store's own history: every customer text message of a conversation that
    /// carries a department (as the importer's presets label them), split by conversation. Prints the held-out
    /// accuracy per department and writes router.onnx and router.json; point `[triage.router] model` at it and
    /// reload (`POST /admin/triage/reload` or SIGHUP).
    Train {
        /// The store to learn from, e.g. sqlite://data/protofuse.db or mysql://user:pass@host/db.
        #[arg(long, value_name = "URL")]
        from_store: String,
        /// Where router.onnx and router.json are written.
        #[arg(long, default_value = "config/triage")]
        out: PathBuf,
        /// Departments with fewer labelled conversations are left out.
        #[arg(long, default_value_t = RouterOptions::default().min_conversations)]
        min_conversations: usize,
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
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// No SQLite file at the given URL (opening it would create an empty store).
    #[error("no store at {0}")]
    NoStore(String),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
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
pub async fn run(args: TriageArgs) -> Result<(), CommandError> {
    match args.action {
        Some(TriageAction::Train {
            from_store,
            out,
            min_conversations,
        }) => train(&from_store, &out, RouterOptions { min_conversations }).await,
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

async fn train(url: &str, out: &Path, options: RouterOptions) -> Result<(), CommandError> {
    if let Some(file) = sqlite_file(url)
        && !file.exists()
    {
        return Err(CommandError::NoStore(file.display().to_string()));
    }
    let store = protofuse_store::open(&StoreConfig::for_url(url)).await?;
    let mut history = Vec::new();
    let mut page = PageRequest {
        limit: PageRequest::MAX_LIMIT,
        ..PageRequest::default()
    };
    loop {
        let read = store.labelled_messages(page).await?;
        history.extend(read.items.into_iter().filter_map(|l| match l.message.content {
            Content::Text { text } => Some(Labelled {
                text,
                department: l.department,
                conversation: l.message.conversation_id.to_string(),
            }),
            _ => None,
        }));
        match read.next_cursor {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    eprintln!("read {} labelled customer messages", history.len());
    let metrics = protofuse_triage_train::train_router(history, out, options)?;
    print!("{}", protofuse_triage_train::router_summary(&metrics));
    println!("wrote {}/router.onnx and router.json", out.display());
    Ok(())
}

/// The file a `sqlite:` URL names, if it names one (not `:memory:`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
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
    let routed = match d.routed_by {
        Routed::Rule => "by a rule".to_owned(),
        Routed::History { confidence } => format!("learned from history, confidence {confidence:.3}"),
        Routed::Intent => "the intent's route".to_owned(),
    };
    format!(
        "intent:      {} (confidence {:.3})\ndepartment:  {} ({routed})\ndecision:    {action}\nwhy:         {}\ntop intents: {}\nmodel:       {}\n",
        d.intent,
        d.confidence,
        d.department,
        if d.mixed_intents.is_empty() {
            d.reason.clone()
        } else {
            format!(
                "{}; the clauses ask for different things ({}), so it is unsure",
                d.reason,
                d.mixed_intents.join(", ")
            )
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
    let decisions: Vec<Decision> = examples
        .iter()
        .map(|e| triage.triage(&e.text, &ConversationContext::default()))
        .collect();
    let decided: Vec<(String, String)> = examples
        .iter()
        .zip(&decisions)
        .map(|(e, d)| (e.intent.clone(), d.intent.clone()))
        .collect();
    let calibration = Calibration::of(&decisions, &decided);
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
    let figures = confusion.figures(Some(&calibration.confidences));
    let ece = figures.ece.unwrap_or_default();
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
            "ece": ece,
            "ece_bins": eval::BINS,
            "reliability": calibration.reliability,
            "low_confidence_handoffs": calibration.handed_off,
            "low_confidence_handoff_accuracy": calibration.handed_off_accuracy,
            "labels": labels,
            "confusion": confusion.counts,
            "model_version": triage.model().version(),
        });
        println!("{out}");
    } else {
        println!(
            "{}: {} examples\naccuracy {:.4}\nmacro-F1 {:.4}\nhuman precision {:.4}\n\n{}\n\n\
             calibration: ECE {ece:.4} ({} equal-width bins)\n{}\nhanded off for low confidence: {} ({:.1} %), \
             of which the model had right {:.4}",
            file.display(),
            figures.examples,
            figures.accuracy,
            figures.macro_f1,
            figures.human_precision,
            confusion.table(),
            eval::BINS,
            eval::reliability_table(&calibration.reliability),
            calibration.handed_off,
            100.0 * calibration.handed_off as f64 / figures.examples.max(1) as f64,
            calibration.handed_off_accuracy,
        );
    }
    Ok(())
}

/// How far the served confidence can be trusted on an evaluation file.
struct Calibration {
    /// (confidence each decision was served with, a rule's 1.0 included; was its intent right): the figure the
    /// hand-off threshold reads, so the one whose calibration matters.
    confidences: Vec<(f32, bool)>,
    /// Their reliability table.
    reliability: Vec<eval::Bin>,
    /// Decisions handed to a person for low confidence.
    handed_off: usize,
    /// How often the model's intent was right on those: low, if the confidence means what it says and the
    /// threshold spends people's time where it is needed.
    handed_off_accuracy: f64,
}

impl Calibration {
    /// From the decisions and their (truth, predicted) intents, in the same order.
    fn of(decisions: &[Decision], decided: &[(String, String)]) -> Self {
        let confidences: Vec<(f32, bool)> = decisions
            .iter()
            .zip(decided)
            .map(|(d, (truth, predicted))| (d.confidence, truth == predicted))
            .collect();
        let unsure: Vec<bool> = decisions
            .iter()
            .zip(&confidences)
            .filter(|(d, _)| {
                matches!(
                    d.decision,
                    Action::Handoff {
                        reason: HandoffReason::LowConfidence
                    }
                )
            })
            .map(|(_, (_, right))| *right)
            .collect();
        Self {
            reliability: eval::reliability(&confidences),
            confidences,
            handed_off: unsure.len(),
            handed_off_accuracy: unsure.iter().filter(|r| **r).count() as f64 / unsure.len().max(1) as f64,
        }
    }
}

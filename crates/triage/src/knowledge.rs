//! The knowledge base: question/answer pairs from a TOML file, matched by cosine similarity of the same
//! hashed features the model sees (so typos and mixed scripts still match). Reads its file once, in
//! [`Knowledge::load`]; must never do I/O when matching.

use std::path::Path;

use serde::Deserialize;

use super::TriageError;
use std::collections::HashMap;

use super::features::{Analyzed, similarity_features};

/// Wider than the model's space: the index holds only a few hundred sparse questions, and fewer collisions
/// keep unrelated questions near zero similarity.
const KB_DIM: usize = 1 << 18;

/// The file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnowledgeFile {
    #[serde(default)]
    entries: Vec<Entry>,
}

/// `[[entries]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// Named in decisions.
    pub(crate) id: String,
    /// Ways customers ask it; the first is the one suggested.
    pub(crate) questions: Vec<String>,
    /// The bot's answer.
    pub(crate) answer: String,
}

/// A match: the entry and how similar its closest question is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Match<'a> {
    /// The entry.
    pub(crate) entry: &'a Entry,
    /// Cosine similarity in [0, 1].
    pub(crate) similarity: f32,
}

/// The loaded knowledge base: the entries and an inverted index of their questions' features, so a message is
/// compared only with the questions it shares a feature with (the full scan over every question was a third of
/// the full decision's time).
#[derive(Debug, Clone, Default)]
pub(crate) struct Knowledge {
    entries: Vec<Entry>,
    /// Feature index → (question, value), questions in ascending order.
    postings: HashMap<u32, Vec<(u32, f32)>>,
    /// The entry of each question.
    question_entry: Vec<usize>,
}

impl Knowledge {
    /// Reads `path`; errors name the file.
    pub(crate) fn load(path: &Path) -> Result<Self, TriageError> {
        let text = std::fs::read_to_string(path).map_err(|e| TriageError::Read(path.to_path_buf(), e))?;
        let file: KnowledgeFile =
            toml::from_str(&text).map_err(|e| TriageError::Knowledge(path.to_path_buf(), e.to_string()))?;
        if let Some(bad) = file
            .entries
            .iter()
            .find(|e| e.questions.is_empty() || e.answer.trim().is_empty())
        {
            return Err(TriageError::Knowledge(
                path.to_path_buf(),
                format!("entry {} needs questions and an answer", bad.id),
            ));
        }
        Ok(Self::new(file.entries))
    }

    /// Indexes `entries`.
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        let mut question_entry = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            for question in &entry.questions {
                let q = question_entry.len() as u32;
                question_entry.push(i);
                let x = similarity_features(question, KB_DIM);
                for (&index, &value) in x.indices.iter().zip(&x.values) {
                    postings.entry(index).or_default().push((q, value));
                }
            }
        }
        Self {
            entries,
            postings,
            question_entry,
        }
    }

    /// Entries by best similarity to the analysed message, best first, one per entry, at most `limit`.
    pub(crate) fn best(&self, message: &Analyzed, limit: usize) -> Vec<Match<'_>> {
        let query = message.similarity_features(KB_DIM);
        // The cosine of two L2-normalised vectors, summed over the features they share, in the query's
        // ascending index order (the order a merge of the two sorted vectors adds them in).
        let mut dot = vec![0f32; self.question_entry.len()];
        for (index, value) in query.indices.iter().zip(&query.values) {
            for &(q, w) in self.postings.get(index).map_or(&[][..], Vec::as_slice) {
                dot[q as usize] += value * w;
            }
        }
        let mut best = vec![0f32; self.entries.len()];
        for (q, &entry) in self.question_entry.iter().enumerate() {
            best[entry] = best[entry].max(dot[q]);
        }
        let mut matches: Vec<Match<'_>> = self
            .entries
            .iter()
            .zip(best)
            .map(|(entry, similarity)| Match { entry, similarity })
            .collect();
        matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        matches.truncate(limit);
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::analyze;

    #[test]
    fn closest_entry_first() {
        let entry = |id: &str, q: &str| Entry {
            id: id.to_owned(),
            questions: vec![q.to_owned()],
            answer: id.to_owned(),
        };
        let kb = Knowledge::new(vec![
            entry("invoice", "怎么开发票"),
            entry("hours", "what are your opening hours"),
        ]);
        let best = kb.best(&analyze("怎么开发票？"), 2);
        assert_eq!(best[0].entry.id, "invoice");
        assert!(best[0].similarity > 0.9 && best[1].similarity < 0.1);
        assert_eq!(kb.best(&analyze("opening hours pls"), 1)[0].entry.id, "hours");
        // The index gives exactly the cosine a full comparison gives.
        let text = "怎么开发票 opening";
        let full = similarity_features(text, KB_DIM).dot(&similarity_features("怎么开发票", KB_DIM));
        assert_eq!(kb.best(&analyze(text), 1)[0].similarity, full);
    }
}

//! Text → hashed sparse features, the one tokenizer training and serving share. Training
//! (`protofuse-triage-train`) calls these same functions; it must never grow a tokenizer of its own, and a change
//! of what [`features`] emits must raise [`VERSION`].
//!
//! Chinese needs no word segmenter here: every Han character is a unit, Latin and digit runs are word units, and
//! the features are unit uni-, bi- and (for Han) tri-grams plus character 3–5-grams inside Latin words (which
//! catches typos and pinyin) and across the boundary of two adjacent Latin words (which catches a word split by a
//! stray space, "ref und", "someone lse"), and the message length in units, bucketed ([`features`]). The knowledge
//! base's similarity ([`similarity_features`]) leaves out the last two, which were chosen for the intent model
//! only: a shared length bucket would make unrelated messages alike, and its similarity thresholds were set on the
//! features without them. Everything is hashed into a fixed dimension, so unseen words cost nothing.
//!
//! The cross-word grams and the length bucket were chosen by grouped cross-validation on the training split alone
//! (`protofuse-triage-train --cv`; issue 8), at the settings of `SGD`, out-of-fold accuracy en / zh: without them
//! 0.9282 / 0.9196, with them 0.9324 / 0.9236 (the length bucket alone 0.9295 / 0.9232). Re-dealt folds and SGD
//! order (three other seeds) agreed: en +0.005, +0.006, +0.005; zh +0.006, +0.004, +0.004. Tried and dropped, for
//! gaining less than the fold noise (about 0.003 on the mean) or losing: light English suffix stripping (the char
//! grams already cover it), word skip-bigrams, char 2–5-, 3–6- and 2–6-grams, char grams over the space instead of
//! across the join (as good on these folds, not on the others), first/last-word markers, down- or up-weighting a
//! feature kind, other count damping. The model now sees about 1.5× the features (74 against 49 per training
//! example): features alone stay a few µs a message (the dense MatMul it then fed cost ~70 µs; the sparse model
//! reads only the active rows).

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// The tokenizer's version, written into every trained model (`protofuse.features`) and checked when one is
/// loaded: a model only means something over the features it was trained on, and a model trained before a
/// tokenizer change would otherwise load and quietly misjudge. Raise it whenever [`features`] changes what it
/// emits. 1: unit n-grams and char grams inside words; 2: also char grams across word joins and the length bucket.
pub const VERSION: u32 = 2;

/// 2^16 features × 10 intents × 4 bytes ≈ 2.6 MB of weights. Chosen by grouped cross-validation on the training
/// split (`protofuse-triage-train --search`): over 2^14 it gains about a point of out-of-fold accuracy in Chinese
/// (0.920 vs 0.910 at the best settings of each; 0.924 vs 0.910 with the cross-word grams and length bucket), where hash collisions among Han bi-/tri-grams cost most. A dense
/// MatMul over 2.6 MB is memory-bound, which is why the model file is sparse (only active rows are read); watch
/// p99 anyway (`cargo bench -p protofuse-triage`). The server reads
/// the dimension from the model's `protofuse.dim` metadata, so this constant only matters for training.
pub const DEFAULT_DIM: usize = 1 << 16;

/// A sparse feature vector: sorted, unique indices with L2-normalised values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    /// Feature indices, ascending.
    pub indices: Vec<u32>,
    /// Values, same length as `indices`.
    pub values: Vec<f32>,
}

impl SparseVec {
    /// Dot product of two sparse vectors (both sorted).
    pub fn dot(&self, other: &SparseVec) -> f32 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }

    /// Writes the vector into a zeroed dense buffer.
    pub fn scatter(&self, dense: &mut [f32]) {
        for (&i, &v) in self.indices.iter().zip(&self.values) {
            dense[i as usize] = v;
        }
    }
}

/// Lowercase, full-width → half-width (NFKC), every non-alphanumeric character (punctuation, emoji,
/// whitespace) → one space, trimmed.
pub fn normalize(text: &str) -> String {
    // Most messages are already NFKC (ASCII, plain Han): the quick check skips the decompose/compose pass,
    // which was a quarter of the full decision's time; the result is the same by definition.
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        fold(text.chars(), text.len())
    } else {
        fold(text.nfkc(), text.len())
    }
}

fn fold(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut space = true;
    for c in chars.flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// The units of normalised text: one per CJK character, one per Latin/digit word. Spaces between CJK
/// characters vanish, so "几 天 能 到" and "几天能到" look the same.
pub fn units(normalized: &str) -> Vec<&str> {
    let mut units = Vec::new();
    let mut word_start = None;
    for (i, c) in normalized.char_indices() {
        if is_cjk(c) || c == ' ' {
            if let Some(start) = word_start.take() {
                units.push(&normalized[start..i]);
            }
            if c != ' ' {
                units.push(&normalized[i..i + c.len_utf8()]);
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(start) = word_start {
        units.push(&normalized[start..]);
    }
    units
}

fn starts_cjk(unit: &str) -> bool {
    unit.chars().next().is_some_and(is_cjk)
}

/// FNV-1a over a kind tag and the parts, so "u:ab" and "b:a|b" never collide by construction.
fn hash(kind: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind);
    for part in parts {
        part.bytes().for_each(&mut eat);
        eat(0xff);
    }
    h
}

/// The intent model's feature vector of `text` in `dim` dimensions.
pub fn features(text: &str, dim: usize) -> SparseVec {
    analyze(text).features(dim)
}

/// The features for similarity between texts (the knowledge base): those of [`features`] without the length
/// bucket and the cross-word grams.
pub fn similarity_features(text: &str, dim: usize) -> SparseVec {
    analyze(text).similarity_features(dim)
}

/// One message normalised and hashed once, for everything serving needs from it: rules read the normalised
/// text, the models [`Analyzed::features`], the knowledge base [`Analyzed::similarity_features`].
#[derive(Debug, Clone)]
pub struct Analyzed {
    /// [`normalize`]d text.
    pub normalized: String,
    /// How many [`units`] it has.
    pub units: usize,
    /// Hashes both feature kinds share.
    shared: Vec<u64>,
    /// Hashes only the model sees (the length bucket, cross-word grams).
    model_only: Vec<u64>,
}

impl Analyzed {
    /// As [`features`].
    pub fn features(&self, dim: usize) -> SparseVec {
        finish(self.shared.iter().chain(&self.model_only).copied(), dim)
    }

    /// As [`similarity_features`].
    pub fn similarity_features(&self, dim: usize) -> SparseVec {
        finish(self.shared.iter().copied(), dim)
    }
}

/// Normalises and hashes `text` once.
pub fn analyze(text: &str) -> Analyzed {
    let normalized = normalize(text);
    let units = units(&normalized);
    let mut shared = Vec::with_capacity(units.len() * 8);
    // A prior that depends on how much was said: "hi" alone is a greeting, "hi" before ten words is not.
    // Empty (all-punctuation or emoji) messages count as one unit.
    let mut model_only = vec![hash(b'L', &[length_bucket(units.len())])];
    for (i, unit) in units.iter().enumerate() {
        shared.push(hash(b'u', &[unit]));
        if let Some(next) = units.get(i + 1) {
            shared.push(hash(b'b', &[unit, next]));
            if let Some(third) = units
                .get(i + 2)
                .filter(|t| starts_cjk(unit) && starts_cjk(next) && starts_cjk(t))
            {
                shared.push(hash(b't', &[unit, next, third]));
            }
            if !starts_cjk(unit) && !starts_cjk(next) {
                join_grams(unit, next, &mut model_only);
            }
        }
        if !starts_cjk(unit) {
            char_grams(unit, &mut shared);
        }
    }
    Analyzed {
        units: units.len(),
        normalized,
        shared,
        model_only,
    }
}

/// Units per message, in buckets: 0–1, 2, 3, 4–5, 6–8, 9+.
fn length_bucket(units: usize) -> &'static str {
    match units {
        0..=1 => "1",
        2 => "2",
        3 => "3",
        4..=5 => "4",
        6..=8 => "6",
        _ => "9",
    }
}

const CHAR_GRAMS: std::ops::RangeInclusive<usize> = 3..=5;

/// Character 3–5-grams of `<word>`.
fn char_grams(word: &str, hashes: &mut Vec<u64>) {
    let padded: Vec<char> = std::iter::once('<')
        .chain(word.chars())
        .chain(std::iter::once('>'))
        .collect();
    let mut buf = String::new();
    for n in CHAR_GRAMS {
        for window in padded.windows(n) {
            buf.clear();
            buf.extend(window);
            hashes.push(hash(b'c', &[&buf]));
        }
    }
}

/// The character 3–5-grams of `<ab>` that cross the join of `a` and `b`, hashed like the grams inside a word, so
/// "ref und" shares "efun", "fund" with "refund".
fn join_grams(a: &str, b: &str, hashes: &mut Vec<u64>) {
    let joined: Vec<char> = std::iter::once('<')
        .chain(a.chars())
        .chain(b.chars())
        .chain(std::iter::once('>'))
        .collect();
    let cut = a.chars().count() + 1;
    let mut buf = String::new();
    for n in CHAR_GRAMS {
        for (start, window) in joined.windows(n).enumerate() {
            if start < cut && start + n > cut {
                buf.clear();
                buf.extend(window);
                hashes.push(hash(b'c', &[&buf]));
            }
        }
    }
}

/// Counts per index, damped with 1 + ln(count) so a repeated word does not dominate, then L2-normalised.
fn finish(hashes: impl Iterator<Item = u64>, dim: usize) -> SparseVec {
    let mut indices: Vec<u32> = hashes.map(|h| (h % dim as u64) as u32).collect();
    indices.sort_unstable();
    let mut vec = SparseVec::default();
    for chunk in indices.chunk_by(|a, b| a == b) {
        vec.indices.push(chunk[0]);
        vec.values.push(1.0 + (chunk.len() as f32).ln());
    }
    let norm = vec.values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vec.values.iter_mut().for_each(|v| *v /= norm);
    }
    vec
}

/// Whether `text` says anything: at least one character that is neither whitespace nor invisible (zero-width
/// spaces and joiners, the BOM, control characters). Blank text is no text: there is nothing to triage.
pub fn is_blank(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || c.is_control() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_width_case_and_punctuation() {
        assert_eq!(
            normalize("  ＡＰＰ闪退了！！ WTF,, my Refund?? "),
            "app闪退了 wtf my refund"
        );
        assert_eq!(units("几 天 能 到 app crash"), ["几", "天", "能", "到", "app", "crash"]);
    }

    /// The fast path (text already NFKC) gives what the full NFKC pass gives, on every line of the training
    /// file.
    #[test]
    fn fast_paths_normalize_as_the_full_pass_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let data = std::fs::read_to_string(root.join("config/triage/data/train.jsonl")).unwrap();
        for line in data.lines() {
            assert_eq!(normalize(line), fold(line.nfkc(), line.len()), "{line}");
        }
    }

    #[test]
    fn features_are_deterministic_normalized_and_in_range() {
        let a = features("我要退货", 1024);
        assert_eq!(a, features("我要退货！", 1024));
        assert!(a.indices.iter().all(|&i| i < 1024));
        assert!((a.dot(&a) - 1.0).abs() < 1e-5);
        assert!(similarity_features("", 1024).indices.is_empty());
        // Only the length bucket: a message of emoji and punctuation counts as one unit.
        assert_eq!(features("", 1024), features("👍！！", 1024));
        assert_eq!(features("", 1024).indices.len(), 1);
    }

    const DIM: usize = 1 << 16;

    fn has(v: &SparseVec, kind: u8, part: &str) -> bool {
        v.indices.contains(&((hash(kind, &[part]) % DIM as u64) as u32))
    }

    #[test]
    fn char_grams_cross_the_join_of_latin_words_only() {
        let split = features("ref und pls", DIM);
        // Inside the words, as before; across "ref|und" and "und|pls" now too, hashed like grams inside a word.
        assert!(
            [
                "<re", "ref>", "und", "efun", "efund", "<refu", "fund>", "refun", "ndpl", "dpls>"
            ]
            .iter()
            .all(|g| has(&split, b'c', g))
        );
        // At most 5 characters, and the space is not part of any gram.
        assert!(!["refund", "f u", "d p", "f und"].iter().any(|g| has(&split, b'c', g)));
        // A Han unit in between breaks the join; Han text has no char grams at all.
        assert!(!has(&features("ref 你 und", DIM), b'c', "efun"));
        assert!(!has(&features("退货 ref", DIM), b'c', "货re"));
        // The knowledge base's similarity keeps the grams inside words only.
        let kb = similarity_features("ref und", DIM);
        assert!(has(&kb, b'c', "ref>") && !has(&kb, b'c', "efun"));
    }

    #[test]
    fn length_bucket_counts_units() {
        for (text, bucket) in [
            ("hi", "1"),
            ("hi there", "2"),
            ("我要退货", "4"),
            ("hi 我要 refund now pls", "6"),
            ("where is my parcel it has been two weeks now", "9"),
        ] {
            let v = features(text, DIM);
            let buckets: Vec<_> = ["1", "2", "3", "4", "6", "9"]
                .into_iter()
                .filter(|b| has(&v, b'L', b))
                .collect();
            assert_eq!(buckets, [bucket], "{text}");
            assert!(!has(&similarity_features(text, DIM), b'L', bucket), "{text}");
        }
    }

    #[test]
    fn blank_text_is_whitespace_and_invisible_characters_only() {
        for blank in ["", "   ", "\t\n", "\u{200B}\u{FEFF}", "\u{3000}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["a", " 好 ", "😡", "?"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }
}

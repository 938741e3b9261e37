//! The split of labelled examples by seed group: train, validation, test. Must never put two examples of one
//! group on different sides (reading the files is `protofuse_triage::eval::read_jsonl`).

use std::collections::BTreeMap;

pub(crate) use protofuse_triage::eval::Example;

/// Train / validation (temperature, choices) / test (reported only).
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Fits the weights.
    pub(crate) train: Vec<Example>,
    /// Fits the temperature and is where choices were made.
    pub(crate) val: Vec<Example>,
    /// Held out: only ever reported.
    pub(crate) test: Vec<Example>,
}

/// Splits by group, stratified by (language, intent): within each stratum the groups are ordered by a seeded
/// hash and the first 15 % go to test, the next 15 % to validation. Every variant of a seed lands on the same side.
pub(crate) fn split(examples: Vec<Example>, seed: u64) -> Split {
    let mut strata: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let pinned = |e: &Example| e.split.as_deref() == Some("train");
    for e in examples.iter().filter(|e| !pinned(e)) {
        let groups = strata.entry((e.lang.clone(), e.intent.clone())).or_default();
        if !groups.contains(&e.group) {
            groups.push(e.group.clone());
        }
    }
    let mut side: BTreeMap<String, u8> = BTreeMap::new();
    for groups in strata.values_mut() {
        groups.sort_by_key(|g| mix(seed, g));
        let held = (groups.len() * 15).div_ceil(100);
        for (i, g) in groups.iter().enumerate() {
            side.insert(g.clone(), if i < held { 2 } else { u8::from(i < 2 * held) });
        }
    }
    let mut split = Split::default();
    for e in examples {
        if pinned(&e) {
            split.train.push(e);
            continue;
        }
        match side.get(&e.group) {
            Some(2) => split.test.push(e),
            Some(1) => split.val.push(e),
            _ => split.train.push(e),
        }
    }
    split
}

pub(super) fn mix(seed: u64, s: &str) -> u64 {
    s.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_never_straddle_the_split() {
        let examples: Vec<Example> = (0..400)
            .map(|i| Example {
                text: format!("t{i}"),
                intent: ["a", "b"][(i / 4) % 2].to_owned(),
                lang: "en".to_owned(),
                group: format!("g{}", i / 4),
                split: None,
            })
            .collect();
        let split = split(examples, 7);
        let test: Vec<_> = split.test.iter().map(|e| &e.group).collect();
        assert!(!split.test.is_empty() && !split.val.is_empty());
        assert!(split.train.iter().chain(&split.val).all(|e| !test.contains(&&e.group)));
    }
}

//! The split of labelled examples by seed group: train, validation, calibration, test. Must never put two examples
//! of one group on different sides (reading the files is `protofuse_triage::eval::read_jsonl`).

use std::collections::BTreeMap;

pub(crate) use protofuse_triage::eval::Example;

/// Train / validation (the `human` offset; where earlier choices were made) / calibration / test (reported only).
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Fits the weights.
    pub(crate) train: Vec<Example>,
    /// Sets the `human` offset; later seed batches were written from its errors, so it is optimistic.
    pub(crate) val: Vec<Example>,
    /// Fits the calibration and nothing else.
    pub(crate) calibration: Vec<Example>,
    /// Held out: only ever reported.
    pub(crate) test: Vec<Example>,
}

/// Splits by group, stratified by (language, intent): within each stratum the groups are ordered by a seeded
/// hash; the first 15 % are held out and dealt alternately to test and calibration (test first, so a stratum
/// with one held-out group keeps it for test), the next 15 % go to validation. Every variant of a seed lands on
/// the same side.
///
/// Calibration is carved out of the held-out 15 %, not out of training or validation: every other
/// first-batch group has had seeds written from its errors (validation's, and the out-of-fold errors of the
/// training split's), so a calibrator fitted there learns an accuracy the model does not have on new phrasings
/// (a temperature fitted on the out-of-fold predictions sharpened to 0.63 and made the test ECE worse than none).
/// Training, validation and the weights are exactly what they were before calibration had its own split.
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
            let held_side = if i % 2 == 0 { TEST } else { CALIBRATION };
            side.insert(g.clone(), if i < held { held_side } else { u8::from(i < 2 * held) });
        }
    }
    let mut split = Split::default();
    for e in examples {
        if pinned(&e) {
            split.train.push(e);
            continue;
        }
        match side.get(&e.group) {
            Some(&TEST) => split.test.push(e),
            Some(&CALIBRATION) => split.calibration.push(e),
            Some(1) => split.val.push(e),
            _ => split.train.push(e),
        }
    }
    split
}

/// The sides of [`split`] beyond training (0) and validation (1).
const TEST: u8 = 2;
const CALIBRATION: u8 = 3;

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
        let sides = [&split.train, &split.val, &split.calibration, &split.test];
        assert!(sides.iter().all(|s| !s.is_empty()));
        for (i, a) in sides.iter().enumerate() {
            for b in &sides[i + 1..] {
                assert!(a.iter().all(|e| b.iter().all(|f| f.group != e.group)));
            }
        }
        // Calibration and test share the held-out 15 %, half each (up to one group per stratum).
        let groups = |set: &[Example]| {
            set.iter()
                .map(|e| &e.group)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert!(groups(&split.test).abs_diff(groups(&split.calibration)) <= 2);
    }
}

//! The entry point the cargo-fuzz target (`fuzz/fuzz_targets/normalize.rs`) and the corpus replay test share, so
//! that CI on stable checks every kept input through exactly the code the fuzzer ran.
//!
//! [`decode::normalize`] is pure: one `mysql_async::Value` (from a snapshot row or a binlog row image) and its
//! column to JSON. The fuzzer writes both: the column's kind, the value's variant and its payload. Enum and set
//! columns get at most 64 labels, MySQL's own limit. Compiled only for tests and the `fuzzing` feature.

use mysql_async::Value;

use crate::charset::Charset;
use crate::decode::{self, ColumnInfo, Kind};

const CHARSETS: [Charset; 6] = [
    Charset::Utf8,
    Charset::Latin1,
    Charset::Gbk,
    Charset::Gb18030,
    Charset::Big5,
    Charset::Binary,
];

/// Reads the input front to back; missing bytes read as zero, so every input is a valid case.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        out[..n].copy_from_slice(head);
        self.0 = tail;
        out
    }

    fn byte(&mut self) -> u8 {
        self.take::<1>()[0]
    }
}

/// Runs one fuzz input through [`decode::normalize`]. Layout: kind, value variant, reinterpretation, a
/// parameter (charset, label count or BINARY length), then the value's fields; the rest is a byte payload.
pub fn normalize(data: &[u8]) {
    let mut input = Input(data);
    let (kind, variant, reinterpret, parameter) = (input.byte(), input.byte(), input.byte(), input.byte());
    let labels = |n: u8| (0..n % 65).map(|i| format!("l{i}")).collect::<Vec<_>>();
    let kind = match kind % 16 {
        0 => Kind::Int,
        1 => Kind::Decimal,
        2 => Kind::Float,
        3 => Kind::Double,
        4 => Kind::Date,
        5 => Kind::DateTime,
        6 => Kind::Timestamp,
        7 => Kind::Time,
        8 => Kind::Year,
        9 => Kind::Text(CHARSETS[usize::from(parameter) % CHARSETS.len()]),
        10 => Kind::Binary {
            pad: (parameter > 0).then_some(usize::from(parameter)),
        },
        11 => Kind::Enum(labels(parameter)),
        12 => Kind::Set(labels(parameter)),
        13 => Kind::Bit,
        _ => Kind::Json,
    };
    let reinterpret = (reinterpret > 0).then(|| CHARSETS[usize::from(reinterpret) % CHARSETS.len()]);
    let value = match variant % 8 {
        0 => Value::NULL,
        1 => Value::Int(i64::from_le_bytes(input.take())),
        2 => Value::UInt(u64::from_le_bytes(input.take())),
        3 => Value::Float(f32::from_le_bytes(input.take())),
        4 => Value::Double(f64::from_le_bytes(input.take())),
        5 => {
            let [y0, y1, mo, d, h, mi, s] = input.take();
            Value::Date(
                u16::from_le_bytes([y0, y1]),
                mo,
                d,
                h,
                mi,
                s,
                u32::from_le_bytes(input.take()),
            )
        }
        6 => {
            // A day count fits a byte: TIME spans ±838 hours (34 days), and a binlog TIME2 at most 1023 hours.
            // Larger ones exist nowhere but overflow mysql_common's own `Debug` for `Value`.
            let [neg, days, h, m, s] = input.take();
            Value::Time(neg & 1 == 1, u32::from(days), h, m, s, u32::from_le_bytes(input.take()))
        }
        _ => Value::Bytes(input.0.to_vec()),
    };
    let column = ColumnInfo {
        name: "c".to_owned(),
        kind,
    };
    let _ = decode::normalize(&value, &column, reinterpret);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the kept corpus (seeds and minimised findings) through the fuzz target's entry, on stable.
    #[test]
    fn kept_corpus_replays_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/normalize");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            normalize(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 16, "{} holds only {replayed} inputs", dir.display());
    }
}

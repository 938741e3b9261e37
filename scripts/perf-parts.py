#!/usr/bin/env python3
"""Splits a profile of the REST bench into the parts of a request's path.

Reads `perf script -F comm,tid,ip,sym` output on stdin (a `perf record --call-graph dwarf -p <bench pid>` of
`cargo bench --bench rest_ingest`) and counts each sample under the innermost frame of its stack that names a
part (the first matching pattern below, tried frame by frame from the leaf outwards). Prints each part's share
of all samples. A flat profile of this server has no single hot frame; this says which stage the time is spent
under, which is what an optimisation has to pick.

    perf script -F comm,tid,ip,sym -i perf.data | scripts/perf-parts.py
"""

import collections
import re
import sys

# (part, pattern on a frame's symbol); the hyper frames are split between the server and the bench's load
# generator below, by whether the stack holds hyper's client.
PARTS = [
    ("writer thread: write_one's statements", r"sqlite::message::write_one|write_one \(inlined\)"),
    ("writer thread: checkpoints", r"sqlite3Checkpoint|sqlite3WalCheckpoint"),
    ("writer thread: WAL frames at COMMIT", r"walFrames|sqlite3PagerCommitPhaseOne"),
    ("writer thread: rest of COMMIT", r"sqlite3VdbeHalt"),
    ("handler: native::decode", r"native::decode"),
    ("handler: validation", r"Envelope::validate"),
    ("handler: routing to destinations", r"Deliveries|dispatch::.*route"),
    ("handler: queueing the write", r"queue::submit"),
    ("handler: the response's JSON", r"axum::json|serde_json::ser|Json<T> as axum_core::response::IntoResponse"),
    ("handler: reading the body", r"body::read_limited"),
    ("handler: the rest", r"rest::post_message"),
    ("middleware: API key", r"auth::require_key"),
    ("middleware: deadline and metrics", r"observe::"),
    ("axum routing, service clones, catch_panic", r"axum::routing|catch_panic|tower::util"),
    ("load generator (hyper client)", r"hyper::client|load_spread"),
    ("hyper, server side", r"hyper::proto|hyper::server|listen::"),
    ("tokio scheduler (wake-ups, parking)", r"tokio::runtime"),
]
PATTERNS = [(name, re.compile(pattern)) for name, pattern in PARTS]


def samples(lines):
    """Yields (thread name, frames leaf first) per sample."""
    comm, frames = None, None
    for line in lines:
        if not line.strip():
            if frames is not None:
                yield comm, frames
            comm, frames = None, None
        elif not line[0].isspace():
            comm, frames = line.split()[0], []
        elif frames is not None:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "?")
    if frames is not None:
        yield comm, frames


def part_of(comm, frames):
    for frame in frames:
        for name, pattern in PATTERNS:
            if pattern.search(frame):
                if name == "hyper, server side" and any("hyper::client" in f for f in frames):
                    return "load generator (hyper client)"
                return name
    return f"other ({comm} thread)"


def main():
    counts = collections.Counter(part_of(comm, frames) for comm, frames in samples(sys.stdin))
    total = sum(counts.values())
    if not total:
        sys.exit("no samples on stdin: pipe `perf script -F comm,tid,ip,sym` into this script")
    print(f"{total} samples")
    for name, n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()

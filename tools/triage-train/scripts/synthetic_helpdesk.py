#!/usr/bin/env python3
"""A synthetic osTicket helpdesk built from the triage seed data, to measure `protofuse triage train
--from-store` end to end (BENCHMARKS.md, "Routing learned from history").

Each seed group becomes one ticket whose thread holds the group's variants as customer messages; the ticket's
department is the one the default `[triage.routes]` give its intent (human, greeting and other: the service
desk). Examples pinned to training (vocabulary, not customers' phrasings) are left out. The tables are osTicket
1.18's as the importer's tests create them (`migrate-tools/tests/support/osticket.rs`), so the output loads into
an empty database and the osTicket preset imports it:

    python3 tools/triage-train/scripts/synthetic_helpdesk.py > /tmp/helpdesk.sql
    mysql demo < /tmp/helpdesk.sql      # a server with --log-bin --binlog-format=ROW --binlog-row-metadata=FULL
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEPARTMENTS = {
    "refund": 1, "logistics": 2, "payment": 3, "account": 4, "technical": 5,
    "complaint": 6, "product": 7, "human": 8, "greeting": 8, "other": 8,
}
AT = "'2024-01-01 00:00:00'"


def schema():
    """The CREATE TABLE statements of the importer's osTicket fixture."""
    source = (ROOT / "migrate-tools/tests/support/osticket.rs").read_text()
    block = source[source.index("pub(crate) const SCHEMA"):]
    block = block[:block.index("];")]
    for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', block, re.S):
        yield re.sub(r"\\\n\s*", "", literal).replace('\\"', '"') + ";"


def quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def batches(head, rows, size=500):
    for i in range(0, len(rows), size):
        yield head + ",".join(rows[i:i + size]) + ";"


def main():
    groups = {}
    for line in (ROOT / "config/triage/data/train.jsonl").open():
        example = json.loads(line)
        if example.get("split") != "train":
            groups.setdefault(example["group"], []).append(example)
    tickets, threads, entries = [], [], []
    entry = 0
    for ticket, (_, examples) in enumerate(sorted(groups.items()), start=1):
        department = DEPARTMENTS[examples[0]["intent"]]
        tickets.append(f"({ticket},'{200000 + ticket}',1,1,1,{department},0,0,'Web',{AT},{AT})")
        threads.append(f"({ticket},{ticket},'T',{AT})")
        for example in examples:
            entry += 1
            entries.append(f"({entry},{ticket},0,1,'M','customer','Web',{quote(example['text'])},'text',{AT},{AT})")
    out = ["SET SESSION sql_mode = '';", *schema(),
           "INSERT INTO ost_user (id, org_id, default_email_id, name, created, updated) "
           f"VALUES (1, 0, 1, 'customer', {AT}, {AT});",
           "INSERT INTO ost_user_email (id, user_id, address) VALUES (1, 1, 'customer@example.com');"]
    out += batches("INSERT INTO ost_ticket (ticket_id, number, user_id, user_email_id, status_id, dept_id, "
                   "topic_id, staff_id, source, created, updated) VALUES ", tickets)
    out += batches("INSERT INTO ost_thread (id, object_id, object_type, created) VALUES ", threads)
    out += batches("INSERT INTO ost_thread_entry (id, thread_id, staff_id, user_id, type, poster, source, body, "
                   "format, created, updated) VALUES ", entries)
    print("\n".join(out))
    print(f"-- {len(tickets)} tickets, {entry} customer messages", file=sys.stderr)


if __name__ == "__main__":
    main()

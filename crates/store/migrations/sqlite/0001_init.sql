-- Conversation store, SQLite. Times are microseconds since the Unix epoch (UTC).
CREATE TABLE conversations (
    id             TEXT    PRIMARY KEY NOT NULL,  -- UUIDv7, text sorts by creation time
    channel        TEXT    NOT NULL,
    account        TEXT,
    customer_id    TEXT    NOT NULL,
    status         TEXT    NOT NULL,              -- bot | queued | assigned | closed
    department     TEXT,
    assigned_agent TEXT,
    -- Set while the conversation is open, NULL once closed: makes "one open conversation per customer on a
    -- channel and account" a constraint the database enforces, even under concurrent first messages.
    open_key       TEXT    UNIQUE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX conversations_by_customer ON conversations (customer_id, status, id);
CREATE INDEX conversations_by_status ON conversations (status, id);

CREATE TABLE messages (
    id              TEXT    PRIMARY KEY NOT NULL, -- UUIDv7
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    idempotency_key TEXT    NOT NULL UNIQUE,
    fingerprint     TEXT    NOT NULL,             -- hash of the envelope, to tell a retry from a reused key
    direction       TEXT    NOT NULL,
    sender_role     TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    body            TEXT    NOT NULL              -- the canonical message (schema v1) as JSON
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

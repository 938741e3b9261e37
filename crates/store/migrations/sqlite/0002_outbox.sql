-- The dispatcher's durable outbox: one row per (message, destination) still to be delivered, written in the same
-- transaction as the message, so an acknowledged message always has its deliveries recorded. Times are
-- microseconds since the Unix epoch (UTC).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    NOT NULL REFERENCES messages (id),
    destination TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,     -- failed attempts so far (a breaker deferral is not an attempt)
    due_at      INTEGER NOT NULL,               -- not tried before this time (backoff, open breaker)
    lease_until INTEGER NOT NULL DEFAULT 0,     -- claimed by a worker until then; 0 = free
    lease_token TEXT,                           -- which claim holds the lease, so a stale worker cannot settle
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (message_id, destination)
);
CREATE INDEX outbox_due ON outbox (destination, due_at);
CREATE INDEX outbox_lease ON outbox (lease_token);

-- Deliveries that exhausted their attempts (or were refused for good). The message itself stays in `messages`.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    NOT NULL REFERENCES messages (id),
    destination TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,               -- when the delivery was first queued
    dead_at     INTEGER NOT NULL,
    UNIQUE (message_id, destination)
);
CREATE INDEX dead_letters_by_destination ON dead_letters (destination, id);

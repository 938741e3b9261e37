-- The dispatcher's durable outbox: one row per (message, destination) still to be delivered, written in the same
-- transaction as the message, so an acknowledged message always has its deliveries recorded. Times are
-- microseconds since the Unix epoch (UTC).
CREATE TABLE outbox (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id  CHAR(36)     CHARACTER SET ascii NOT NULL,
    destination VARCHAR(64)  NOT NULL,
    attempts    INT          NOT NULL DEFAULT 0,
    due_at      BIGINT       NOT NULL,
    lease_until BIGINT       NOT NULL DEFAULT 0,
    lease_token CHAR(36)     CHARACTER SET ascii,
    last_error  TEXT,
    created_at  BIGINT       NOT NULL,
    UNIQUE KEY outbox_message_destination (message_id, destination),
    KEY outbox_due (destination, due_at),
    KEY outbox_lease (lease_token),
    CONSTRAINT outbox_message FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE dead_letters (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id  CHAR(36)     CHARACTER SET ascii NOT NULL,
    destination VARCHAR(64)  NOT NULL,
    attempts    INT          NOT NULL,
    last_error  TEXT         NOT NULL,
    created_at  BIGINT       NOT NULL,
    dead_at     BIGINT       NOT NULL,
    UNIQUE KEY dead_letters_message_destination (message_id, destination),
    KEY dead_letters_by_destination (destination, id),
    CONSTRAINT dead_letters_message FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

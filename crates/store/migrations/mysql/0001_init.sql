-- Conversation store, MySQL 5.7+/MariaDB 10.3+. Times are microseconds since the Unix epoch (UTC).
-- Binary collation: ids, idempotency keys and external ids compare byte for byte (case matters).
CREATE TABLE conversations (
    id             CHAR(36)     CHARACTER SET ascii NOT NULL PRIMARY KEY,
    channel        VARCHAR(64)  NOT NULL,
    account        VARCHAR(191),
    customer_id    VARCHAR(191) NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    department     VARCHAR(191),
    assigned_agent VARCHAR(191),
    open_key       VARCHAR(80)  CHARACTER SET ascii,
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    UNIQUE KEY conversations_open_key (open_key),
    KEY conversations_by_customer (customer_id, status, id),
    KEY conversations_by_status (status, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    id              CHAR(36)     CHARACTER SET ascii NOT NULL PRIMARY KEY,
    conversation_id CHAR(36)     CHARACTER SET ascii NOT NULL,
    idempotency_key VARCHAR(200) CHARACTER SET ascii NOT NULL,
    fingerprint     CHAR(64)     CHARACTER SET ascii NOT NULL,
    direction       VARCHAR(16)  NOT NULL,
    sender_role     VARCHAR(16)  NOT NULL,
    content_type    VARCHAR(16)  NOT NULL,
    received_at     BIGINT       NOT NULL,
    body            LONGTEXT     NOT NULL,
    UNIQUE KEY messages_idempotency_key (idempotency_key),
    KEY messages_by_conversation (conversation_id, id),
    CONSTRAINT messages_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

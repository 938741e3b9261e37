//! Small osTicket and FreeScout databases (table definitions after SCHEMAS.md: osTicket 1.18 install-mysql.sql,
//! FreeScout's Laravel migrations), trimmed to the columns the presets read plus a few neighbours.

/// osTicket: DDL, seed rows, then live changes.
pub(crate) const OSTICKET: (&[&str], &[&str], &[&str]) = (
    &[
        "CREATE TABLE ost_thread (id int(11) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, object_id int(11) unsigned \
         NOT NULL, object_type char(1) NOT NULL, extra text, lastresponse datetime DEFAULT NULL, lastmessage datetime \
         DEFAULT NULL, created datetime NOT NULL) DEFAULT CHARSET=utf8",
        "CREATE TABLE ost_thread_entry (id int(11) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, pid int(11) unsigned \
         NOT NULL DEFAULT '0', thread_id int(11) unsigned NOT NULL DEFAULT '0', staff_id int(11) unsigned NOT NULL \
         DEFAULT '0', user_id int(11) unsigned NOT NULL DEFAULT '0', type char(1) NOT NULL DEFAULT '', flags int(11) \
         unsigned NOT NULL DEFAULT '0', poster varchar(128) NOT NULL DEFAULT '', editor int(10) unsigned NULL, \
         editor_type char(1) NULL, source varchar(32) NOT NULL DEFAULT '', title varchar(255), body text NOT NULL, \
         format varchar(16) NOT NULL DEFAULT 'html', ip_address varchar(64) NOT NULL DEFAULT '', extra text, \
         recipients text, created datetime NOT NULL, updated datetime NOT NULL, KEY thread_id (thread_id)) \
         DEFAULT CHARSET=utf8",
        "CREATE TABLE ost_user (id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, org_id int(10) unsigned NOT \
         NULL, default_email_id int(10) NOT NULL, status int(11) unsigned NOT NULL DEFAULT '0', name varchar(128) NOT \
         NULL, created datetime NOT NULL, updated datetime NOT NULL) DEFAULT CHARSET=utf8",
        "CREATE TABLE ost_staff (staff_id int(11) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, dept_id int(10) \
         unsigned NOT NULL DEFAULT '0', username varchar(32) NOT NULL DEFAULT '', firstname varchar(32), lastname \
         varchar(32), email varchar(255), signature text, created datetime NOT NULL, UNIQUE KEY username (username)) \
         DEFAULT CHARSET=utf8",
        "CREATE TABLE ost_ticket (ticket_id int(11) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, number varchar(20), \
         user_id int(11) unsigned NOT NULL DEFAULT '0', status_id int(10) unsigned NOT NULL DEFAULT '0', dept_id \
         int(10) unsigned NOT NULL DEFAULT '0', topic_id int(10) unsigned NOT NULL DEFAULT '0', created datetime NOT \
         NULL, updated datetime NOT NULL) DEFAULT CHARSET=utf8",
    ],
    &[
        "INSERT INTO ost_ticket (number, user_id, status_id, dept_id, topic_id, created, updated) VALUES \
         ('100001', 1, 1, 1, 1, '2023-05-01 09:00:00', NOW()), ('100002', 2, 1, 2, 2, '2023-05-02 09:00:00', NOW())",
        "INSERT INTO ost_user (org_id, default_email_id, name, created, updated) VALUES (0, 1, 'Zoë Müller', NOW(), \
         NOW()), (0, 2, '王小明', NOW(), NOW())",
        "INSERT INTO ost_staff (username, firstname, lastname, email, created) VALUES ('jdoe', 'Jane', 'Doe', \
         'jane@example.com', NOW())",
        "INSERT INTO ost_thread (object_id, object_type, created, lastmessage) VALUES (1, 'T', '2023-05-01 09:00:00', \
         '2023-05-01 10:00:00'), (2, 'T', '2023-05-02 09:00:00', NULL)",
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, title, body, format, created, updated) VALUES \
         (1, 1, 'M', 'Zoë Müller', 'Printer', '<p>My printer is on fire</p>', 'html', '2023-05-01 09:00:00', NOW()), \
         (2, 2, 'M', '王小明', '发票', '请开发票', 'text', '2023-05-02 09:00:00', NOW())",
        "INSERT INTO ost_thread_entry (thread_id, staff_id, type, poster, body, created, updated) VALUES \
         (1, 1, 'R', 'Jane Doe', 'Unplug it.', '2023-05-01 09:30:00', NOW()), \
         (1, 1, 'N', 'Jane Doe', 'internal: call the fire brigade', '2023-05-01 09:31:00', NOW())",
    ],
    &[
        "INSERT INTO ost_thread_entry (thread_id, user_id, type, poster, body, created, updated) VALUES \
         (2, 2, 'M', '王小明', '谢谢', '2023-05-03 08:00:00', NOW())",
        "UPDATE ost_thread_entry SET body = 'Unplug it first.' WHERE id = 3",
        "DELETE FROM ost_thread_entry WHERE id = 4",
        "UPDATE ost_staff SET lastname = 'Doe-Smith' WHERE staff_id = 1",
        // A transfer: the ticket's conversation is relabelled.
        "UPDATE ost_ticket SET dept_id = 2 WHERE ticket_id = 1",
    ],
);

/// FreeScout: DDL, seed rows, then live changes.
pub(crate) const FREESCOUT: (&[&str], &[&str], &[&str]) = (
    &[
        "CREATE TABLE conversations (id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, number varchar(191), \
         threads_count int NOT NULL DEFAULT 0, type tinyint unsigned NOT NULL, folder_id int unsigned NOT NULL, \
         status tinyint unsigned NOT NULL DEFAULT 1, state tinyint unsigned NOT NULL DEFAULT 1, subject varchar(998), \
         customer_email varchar(191), mailbox_id int unsigned NOT NULL, user_id int unsigned NULL, customer_id int \
         unsigned NULL, created_at timestamp NULL, updated_at timestamp NULL) DEFAULT CHARSET=utf8mb4 \
         COLLATE=utf8mb4_unicode_ci",
        "CREATE TABLE threads (id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, conversation_id int unsigned \
         NOT NULL, user_id int unsigned NULL, type tinyint unsigned NOT NULL, status tinyint unsigned NOT NULL DEFAULT \
         1, state tinyint unsigned NOT NULL DEFAULT 2, body longtext, `from` varchar(191), has_attachments tinyint(1) \
         NOT NULL DEFAULT 0, customer_id int unsigned NULL, created_by_user_id int unsigned NULL, \
         created_by_customer_id int unsigned NULL, first tinyint(1) NOT NULL DEFAULT 0, created_at timestamp NULL, \
         updated_at timestamp NULL, KEY conversation_id (conversation_id)) DEFAULT CHARSET=utf8mb4 \
         COLLATE=utf8mb4_unicode_ci",
        "CREATE TABLE customers (id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, first_name varchar(255), \
         last_name varchar(255), company varchar(255), created_at timestamp NULL, updated_at timestamp NULL) \
         DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        "CREATE TABLE users (id int(10) unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, first_name varchar(20), \
         last_name varchar(30), email varchar(191) NOT NULL, role tinyint unsigned NOT NULL DEFAULT 1, created_at \
         timestamp NULL, updated_at timestamp NULL, UNIQUE KEY users_email_unique (email)) DEFAULT CHARSET=utf8mb4 \
         COLLATE=utf8mb4_unicode_ci",
    ],
    &[
        "INSERT INTO customers (first_name, last_name, created_at) VALUES ('Ana', 'Lima', NOW()), ('李', '雷', NOW())",
        "INSERT INTO users (first_name, last_name, email, created_at) VALUES ('Sam', 'Agent', 'sam@example.com', NOW())",
        "INSERT INTO conversations (number, type, folder_id, status, subject, customer_email, mailbox_id, user_id, \
         customer_id, created_at, updated_at) VALUES ('1', 1, 1, 1, 'Refund 😀', 'ana@example.com', 1, 1, 1, \
         '2024-03-01 10:00:00', '2024-03-01 11:00:00'), ('2', 3, 1, 3, 'Chat', NULL, 1, NULL, 2, \
         '2024-03-02 10:00:00', '2024-03-02 10:00:00')",
        "INSERT INTO threads (conversation_id, type, state, body, created_by_customer_id, created_at) VALUES \
         (1, 1, 2, '<div>I want a refund 😀</div>', 1, '2024-03-01 10:00:00'), (2, 8, 2, '在吗？', 2, \
         '2024-03-02 10:00:00')",
        "INSERT INTO threads (conversation_id, type, state, body, created_by_user_id, created_at) VALUES \
         (1, 2, 2, 'Done.', 1, '2024-03-01 10:30:00'), (1, 3, 2, 'note to self', 1, '2024-03-01 10:31:00'), \
         (1, 2, 1, 'draft reply', 1, '2024-03-01 10:32:00'), (1, 4, 2, NULL, 1, '2024-03-01 10:33:00')",
    ],
    &[
        "UPDATE threads SET state = 2 WHERE id = 5",
        "UPDATE conversations SET status = 3, updated_at = NOW() WHERE id = 1",
        "INSERT INTO threads (conversation_id, type, state, body, created_by_customer_id, created_at) VALUES \
         (2, 8, 2, '好的', 2, NOW())",
        "DELETE FROM threads WHERE id = 2",
    ],
);

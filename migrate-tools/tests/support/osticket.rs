//! An osTicket 1.18 database as upstream creates it, for the preset tests.
//!
//! Table definitions written after osTicket/osTicket `setup/inc/streams/core/install-mysql.sql` (read at commit
//! d3fa2181302e376552d977a428de354db2581b36; the 1.18.1 additions `thread_entry.extra/recipients` and
//! `ticket.ticket_pid` per /work/shared/legacy/SCHEMAS.md, v1.18.1 4689926): every column with its type, nullability,
//! default and the tables' `DEFAULT CHARSET=utf8` (utf8mb3). Indexes other than the primary and unique keys are
//! left out: they change no value. The rows are small and written by hand so that each test can state the
//! canonical form it expects: customer and staff authorship, internal notes, osTicket's own SYSTEM note (staff_id
//! 0), nullable staff names, departments and help topics, a zero date.

use sqlx::MySqlPool;

/// The upstream DDL (table prefix `ost_`).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE `ost_department` (`id` int(11) unsigned NOT NULL auto_increment, `pid` int(11) unsigned default \
     NULL, `tpl_id` int(10) unsigned NOT NULL default '0', `sla_id` int(10) unsigned NOT NULL default '0', \
     `email_id` int(10) unsigned NOT NULL default '0', `autoresp_email_id` int(10) unsigned NOT NULL default '0', \
     `manager_id` int(10) unsigned NOT NULL default '0', `flags` int(10) unsigned NOT NULL default 0, \
     `name` varchar(128) NOT NULL default '', `signature` text NOT NULL, `ispublic` tinyint(1) unsigned NOT NULL \
     default '1', `group_membership` tinyint(1) NOT NULL default '0', `ticket_auto_response` tinyint(1) NOT NULL \
     default '1', `message_auto_response` tinyint(1) NOT NULL default '0', `path` varchar(128) NOT NULL default \
     '/', `updated` datetime NOT NULL, `created` datetime NOT NULL, PRIMARY KEY (`id`), UNIQUE KEY `name` (`name`, \
     `pid`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_help_topic` (`topic_id` int(11) unsigned NOT NULL auto_increment, `topic_pid` int(10) \
     unsigned NOT NULL default '0', `isactive` tinyint(1) unsigned NOT NULL default '1', `ispublic` tinyint(1) \
     unsigned NOT NULL default '1', `noautoresp` tinyint(3) unsigned NOT NULL default '0', `flags` int(10) \
     unsigned DEFAULT '0', `status_id` int(10) unsigned NOT NULL default '0', `priority_id` int(10) unsigned NOT \
     NULL default '0', `dept_id` int(10) unsigned NOT NULL default '0', `staff_id` int(10) unsigned NOT NULL \
     default '0', `team_id` int(10) unsigned NOT NULL default '0', `sla_id` int(10) unsigned NOT NULL default '0', \
     `page_id` int(10) unsigned NOT NULL default '0', `sequence_id` int(10) unsigned NOT NULL DEFAULT '0', \
     `sort` int(10) unsigned NOT NULL default '0', `topic` varchar(32) NOT NULL default '', `number_format` \
     varchar(32) DEFAULT NULL, `notes` text, `created` datetime NOT NULL, `updated` datetime NOT NULL, \
     PRIMARY KEY (`topic_id`), UNIQUE KEY `topic` (`topic`, `topic_pid`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_staff` (`staff_id` int(11) unsigned NOT NULL auto_increment, `dept_id` int(10) unsigned NOT \
     NULL default '0', `role_id` int(10) unsigned NOT NULL default '0', `username` varchar(32) NOT NULL default '', \
     `firstname` varchar(32) default NULL, `lastname` varchar(32) default NULL, `passwd` varchar(128) default \
     NULL, `backend` varchar(32) default NULL, `email` varchar(128) default NULL, `phone` varchar(24) NOT NULL \
     default '', `phone_ext` varchar(6) default NULL, `mobile` varchar(24) NOT NULL default '', `signature` text \
     NOT NULL, `lang` varchar(16) DEFAULT NULL, `timezone` varchar(64) default NULL, `locale` varchar(16) DEFAULT \
     NULL, `notes` text, `isactive` tinyint(1) NOT NULL default '1', `isadmin` tinyint(1) NOT NULL default '0', \
     `isvisible` tinyint(1) unsigned NOT NULL default '1', `onvacation` tinyint(1) unsigned NOT NULL default '0', \
     `assigned_only` tinyint(1) unsigned NOT NULL default '0', `show_assigned_tickets` tinyint(1) unsigned NOT \
     NULL default '0', `change_passwd` tinyint(1) unsigned NOT NULL default '0', `max_page_size` int(11) unsigned \
     NOT NULL default '0', `auto_refresh_rate` int(10) unsigned NOT NULL default '0', `default_signature_type` \
     ENUM('none', 'mine', 'dept') NOT NULL DEFAULT 'none', `default_paper_size` ENUM('Letter', 'Legal', 'Ledger', \
     'A4', 'A3') NOT NULL DEFAULT 'Letter', `extra` text, `permissions` text, `created` datetime NOT NULL, \
     `lastlogin` datetime default NULL, `passwdreset` datetime default NULL, `updated` datetime NOT NULL, \
     PRIMARY KEY (`staff_id`), UNIQUE KEY `username` (`username`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_user` (`id` int(10) unsigned NOT NULL auto_increment, `org_id` int(10) unsigned NOT NULL, \
     `default_email_id` int(10) NOT NULL, `status` int(11) unsigned NOT NULL DEFAULT '0', `name` varchar(128) NOT \
     NULL, `created` datetime NOT NULL, `updated` datetime NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_user_email` (`id` int(10) unsigned NOT NULL auto_increment, `user_id` int(10) unsigned NOT \
     NULL, `flags` int(10) unsigned NOT NULL DEFAULT 0, `address` varchar(128) NOT NULL, PRIMARY KEY (`id`), \
     UNIQUE KEY `address` (`address`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_ticket` (`ticket_id` int(11) unsigned NOT NULL auto_increment, `ticket_pid` int(11) \
     unsigned DEFAULT NULL, `number` varchar(20), `user_id` int(11) unsigned NOT NULL default '0', \
     `user_email_id` int(11) unsigned NOT NULL default '0', `status_id` int(10) unsigned NOT NULL default '0', \
     `dept_id` int(10) unsigned NOT NULL default '0', `sla_id` int(10) unsigned NOT NULL default '0', `topic_id` \
     int(10) unsigned NOT NULL default '0', `staff_id` int(10) unsigned NOT NULL default '0', `team_id` int(10) \
     unsigned NOT NULL default '0', `email_id` int(11) unsigned NOT NULL default '0', `lock_id` int(11) unsigned \
     NOT NULL default '0', `flags` int(10) unsigned NOT NULL default '0', `sort` int(11) unsigned NOT NULL DEFAULT \
     '0', `ip_address` varchar(64) NOT NULL default '', `source` enum('Web','Email','Phone','API','Other') NOT NULL \
     default 'Other', `source_extra` varchar(40) NULL default NULL, `isoverdue` tinyint(1) unsigned NOT NULL \
     default '0', `isanswered` tinyint(1) unsigned NOT NULL default '0', `duedate` datetime default NULL, \
     `est_duedate` datetime default NULL, `reopened` datetime default NULL, `closed` datetime default NULL, \
     `lastupdate` datetime default NULL, `created` datetime NOT NULL, `updated` datetime NOT NULL, \
     PRIMARY KEY (`ticket_id`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_thread` (`id` int(11) unsigned NOT NULL AUTO_INCREMENT, `object_id` int(11) unsigned NOT \
     NULL, `object_type` char(1) NOT NULL, `extra` text, `lastresponse` datetime DEFAULT NULL, `lastmessage` \
     datetime DEFAULT NULL, `created` datetime NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8",
    "CREATE TABLE `ost_thread_entry` (`id` int(11) unsigned NOT NULL auto_increment, `pid` int(11) unsigned NOT \
     NULL default '0', `thread_id` int(11) unsigned NOT NULL default '0', `staff_id` int(11) unsigned NOT NULL \
     default '0', `user_id` int(11) unsigned not null default 0, `type` char(1) NOT NULL default '', `flags` \
     int(11) unsigned NOT NULL default '0', `poster` varchar(128) NOT NULL default '', `editor` int(10) unsigned \
     NULL, `editor_type` char(1) NULL, `source` varchar(32) NOT NULL default '', `title` varchar(255), `body` text \
     NOT NULL, `format` varchar(16) NOT NULL default 'html', `ip_address` varchar(64) NOT NULL default '', \
     `extra` text, `recipients` text, `created` datetime NOT NULL, `updated` datetime NOT NULL, \
     PRIMARY KEY (`id`)) DEFAULT CHARSET=utf8",
];

/// The rows. Session `sql_mode` is cleared for the zero date, as on the older servers osTicket ran on.
pub(crate) const ROWS: &str = "SET SESSION sql_mode = ''; \
    INSERT INTO ost_department (id, name, signature, path, created, updated) VALUES \
      (1, 'Support', '', '/1/', '2023-01-01 00:00:00', '2023-01-01 00:00:00'), \
      (2, 'Billing', '', '/2/', '2023-01-01 00:00:00', '2023-01-01 00:00:00'); \
    INSERT INTO ost_help_topic (topic_id, dept_id, topic, created, updated) VALUES \
      (1, 1, 'Hardware', '2023-01-01 00:00:00', '2023-01-01 00:00:00'), \
      (2, 2, 'Invoices', '2023-01-01 00:00:00', '2023-01-01 00:00:00'); \
    INSERT INTO ost_staff (staff_id, dept_id, username, firstname, lastname, email, signature, created, updated) \
      VALUES (1, 1, 'emma', 'Emma', NULL, 'emma@example.com', '', '2023-01-01 00:00:00', '2023-01-01 00:00:00'), \
      (2, 2, 'jsmith', NULL, 'Smith', NULL, '', '2023-01-01 00:00:00', '2023-01-01 00:00:00'); \
    INSERT INTO ost_user (id, org_id, default_email_id, name, created, updated) VALUES \
      (1, 0, 1, 'Zoë Müller', '2023-04-01 00:00:00', '2023-04-01 00:00:00'), \
      (2, 0, 2, '王小明', '2023-04-02 00:00:00', '2023-04-02 00:00:00'); \
    INSERT INTO ost_user_email (id, user_id, address) VALUES (1, 1, 'zoe@example.com'), (2, 2, 'xm@example.cn'); \
    INSERT INTO ost_ticket (ticket_id, number, user_id, user_email_id, status_id, dept_id, topic_id, staff_id, \
      source, created, updated) VALUES \
      (1, '100001', 1, 1, 1, 1, 1, 1, 'Web', '2023-05-01 09:00:00', '2023-05-01 10:00:00'), \
      (2, '100002', 2, 2, 1, 2, 2, 0, 'Email', '2023-05-02 09:00:00', '2023-05-03 00:00:00'); \
    INSERT INTO ost_thread (id, object_id, object_type, lastmessage, created) VALUES \
      (1, 1, 'T', '2023-05-01 10:00:00', '2023-05-01 09:00:00'), \
      (2, 2, 'T', '0000-00-00 00:00:00', '2023-05-02 09:00:00'); \
    INSERT INTO ost_thread_entry (id, thread_id, staff_id, user_id, type, poster, source, title, body, format, \
      created, updated) VALUES \
      (1, 1, 0, 1, 'M', 'Zoë Müller', 'Web', 'Printer', '<p>My printer is on fire</p>', 'html', \
       '2023-05-01 09:00:00', '2023-05-01 09:00:00'), \
      (2, 1, 1, 0, 'R', 'Emma', '', NULL, 'Unplug it.', 'html', '2023-05-01 09:30:00', '2023-05-01 09:30:00'), \
      (3, 1, 2, 0, 'N', 'Smith', '', 'Escalation', 'call the fire brigade', 'text', '2023-05-01 09:31:00', \
       '2023-05-01 09:31:00'), \
      (4, 2, 0, 2, 'M', '王小明', 'Email', '发票', '请开发票', 'text', '2023-05-02 09:00:00', \
       '0000-00-00 00:00:00'), \
      (5, 2, 0, 0, 'N', 'SYSTEM', '', 'Ticket Marked Overdue', 'Ticket flagged as overdue by the system.', \
       'html', '2023-05-03 00:00:00', '2023-05-03 00:00:00'), \
      (6, 2, 2, 0, 'R', 'J Smith', '', NULL, 'Invoice sent.', 'html', '2023-05-02 10:00:00', \
       '2023-05-02 10:00:00')";

/// A fresh database on the private server with the osTicket tables and rows; returns its URL and a pool.
pub(crate) async fn create() -> (String, MySqlPool) {
    let url = protofuse_testkit::mariadb::server().await.fresh_database().await;
    let pool = MySqlPool::connect(&url).await.unwrap();
    for statement in SCHEMA {
        sqlx::raw_sql(statement).execute(&pool).await.unwrap();
    }
    sqlx::raw_sql(ROWS).execute(&pool).await.unwrap();
    (url, pool)
}

/// The osTicket preset's text.
pub(crate) fn preset() -> &'static str {
    protofuse_migrate::cli::PRESETS
        .iter()
        .find(|(n, _)| *n == "osticket")
        .map(|(_, t)| *t)
        .unwrap()
}

/// Runs the importer binary with `args`, the mapping `mapping` (a path or `preset:…`), and source and target in
/// the environment (as an operator would, keeping credentials out of `ps`).
pub(crate) fn migrate(mapping: &str, source: &str, target: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_protofuse-migrate"))
        .args(["--mapping", mapping])
        .args(args)
        .env("PROTOFUSE_MIGRATE_SOURCE", source)
        .env("PROTOFUSE_MIGRATE_TARGET", target)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

-- Notification mail: each mail is an outbox message (kind 'mail'). This table records when
-- a mail (or a digest of several) was handed to the mail transport for a recipient, so that
-- the sender can limit how many mails one person gets per hour and fold the rest into a
-- digest (see docs/architecture.md).

CREATE TABLE mail_sends (
    recipient   TEXT NOT NULL,
    sent_us     BIGINT NOT NULL,
    message_id  TEXT NOT NULL
);
CREATE INDEX mail_sends_recipient ON mail_sends (recipient, sent_us);

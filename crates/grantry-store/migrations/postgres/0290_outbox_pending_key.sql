-- The sender claims a message only when no earlier message with the same ordering key (a
-- mail's recipient, a subscription, a provisioning target) is still pending, and a mail's
-- digest gathers the recipient's other pending mails. Through `outbox_key` both looked at
-- every message the key ever had, delivered ones included, so a claim grew slower with each
-- mail one approver had received. This index holds the pending messages alone.
CREATE INDEX outbox_pending_key ON outbox (ordering_key, seq) WHERE state = 'pending';

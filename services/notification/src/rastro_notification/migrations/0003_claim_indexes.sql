-- Claiming reads, per open subscription, its due pending messages in time order, and counts the
-- messages in flight: both by index, so a claim costs what it can claim, not the size of the backlog.
CREATE INDEX messages_due_by_subscription ON messages (subscription_id, next_attempt_at, seq)
    WHERE status = 'pending';
CREATE INDEX messages_leased ON messages (leased_until) WHERE status = 'pending' AND leased_until IS NOT NULL;

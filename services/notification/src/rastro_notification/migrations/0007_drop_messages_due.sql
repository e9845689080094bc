-- messages_due (next_attempt_at, over every pending message) let the planner make the claim scan the
-- whole backlog. Planned while the queue was near empty — when autovacuum analyzes it on a healthy
-- system — the index looks like one row, and the claim's per-subscription scan and head probe were
-- both planned on it with the subscription as a filter: every claim read every due message once per
-- subscription and again per candidate, so a backlog made each claim slower, exactly when it had to
-- drain (seen after an ANALYZE: one claim ran for minutes). Every query it served now goes through
-- messages_due_by_subscription (subscription, next_attempt_at, seq), whose subscription column makes it
-- the only index with a condition per subscription.
DROP INDEX IF EXISTS messages_due;

-- Issue 11: dead-letter values are stored sealed (v1:<key_id>:<base64>, docs/privacy.md), and the blind
-- indexes of the e-mails, phones and documents in them let a data-subject request find them.
-- Values stored before this migration are sealed by `rastro privacy rotate-keys`.
ALTER TABLE dead_letters ADD COLUMN personal_index text[] NOT NULL DEFAULT '{}';
CREATE INDEX dead_letters_personal_index ON dead_letters USING gin (personal_index);

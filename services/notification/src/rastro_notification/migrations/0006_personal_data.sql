-- Issue 11: personal data encrypted at rest (docs/privacy.md). recipients.name/email/phone and
-- notices.address hold sealed values (v1:<key_id>:<base64>), notices.context its recipient_name; the
-- blind indexes (HMAC of the normalized e-mail / phone / document) let a data-subject request find
-- rows without decrypting every one. Rows written before this migration are sealed by
-- `rastro privacy rotate-keys`.
ALTER TABLE recipients
    ADD COLUMN email_index    text,
    ADD COLUMN phone_index    text,
    ADD COLUMN document_index text,
    ADD COLUMN source         text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'order'));
CREATE INDEX recipients_email_index ON recipients (tenant_id, email_index) WHERE email_index IS NOT NULL;
CREATE INDEX recipients_phone_index ON recipients (tenant_id, phone_index) WHERE phone_index IS NOT NULL;
CREATE INDEX recipients_document_index ON recipients (tenant_id, document_index)
    WHERE document_index IS NOT NULL;

ALTER TABLE notices ADD COLUMN address_index text;
CREATE INDEX notices_address_index ON notices (tenant_id, address_index) WHERE address_index IS NOT NULL;

-- Every prediction published for a shipment, not only the last (predictions keeps the one in force):
-- the console's ETA history and "how did the promise move" questions read it. Same columns as
-- predictions; one row per published eta.predicted event.
CREATE TABLE prediction_history (LIKE predictions INCLUDING DEFAULTS);
ALTER TABLE prediction_history ADD PRIMARY KEY (tenant_id, tracking_number, event_id);
INSERT INTO prediction_history SELECT * FROM predictions;

-- A random token written with every change of a shipment (its row and timeline): the consumer keeps
-- the shipments it wrote in memory and trusts them only while the stored revision is the one it wrote.
-- NULL (rows written before this column, or by anything else) is never trusted.
ALTER TABLE shipments ADD COLUMN revision bigint;

-- Up Migration

-- What each request cost, in micro-USD, from the price table in effect when it was stored
-- (core/src/pricing). NULL means its model is not in the table: shown as unpriced, never as 0.
ALTER TABLE token_usage ADD COLUMN cost_micro_usd bigint;

-- Sums of the priced requests, and how many requests in the bucket had no price.
ALTER TABLE usage_aggregates
  ADD COLUMN cost_micro_usd bigint NOT NULL DEFAULT 0,
  ADD COLUMN unpriced_requests bigint NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE usage_aggregates DROP COLUMN unpriced_requests, DROP COLUMN cost_micro_usd;
ALTER TABLE token_usage DROP COLUMN cost_micro_usd;

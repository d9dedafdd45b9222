-- Up Migration

-- Budgets and rate limits of a ProxyUser and of an AccessKey, as their spec states them
-- (spec.budget, spec.rateLimits; '{}' = none). Read with the key (findKeyByHash), so the proxy
-- learns them with no extra query, and a change fires the keys' NOTIFY like any other edit.
ALTER TABLE users ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE access_keys ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb;

-- A team's budget: one row per namespace (the TeamBudget resource of that namespace).
CREATE TABLE team_budgets (
  namespace   text PRIMARY KEY,
  name        text NOT NULL,
  uid         text NOT NULL,
  budget      jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER team_budgets_notify AFTER INSERT OR UPDATE OR DELETE ON team_budgets
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_keys();

-- Team spend sums the aggregates of a namespace's users.
CREATE INDEX usage_aggregates_day_user ON usage_aggregates (bucket, user_id, bucket_start);
CREATE INDEX usage_aggregates_day_key ON usage_aggregates (bucket, access_key_id, bucket_start);

-- Rate-limit windows shared by every proxy replica: one row per scope (key:<id>, user:<id>, with
-- :bedrock for the failover limits) and minute. Requests are leased in chunks with a conditional
-- upsert (never past the limit); tokens are added in batches after the requests end.
CREATE TABLE rate_windows (
  scope          text NOT NULL,
  window_start   timestamptz NOT NULL,
  requests       bigint NOT NULL DEFAULT 0,
  input_tokens   bigint NOT NULL DEFAULT 0,
  output_tokens  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, window_start)
);
CREATE INDEX rate_windows_window_start ON rate_windows (window_start);

-- Concurrent-stream slots: a row per admitted request, with a lease its replica renews while the
-- request runs, so a replica that dies frees its slots when the lease runs out.
CREATE TABLE stream_slots (
  scope       text NOT NULL,
  slot        text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (scope, slot)
);

-- Claims a slot in `p_scope` if fewer than `p_limit` unexpired ones are held. The advisory lock
-- serialises claims of one scope across replicas (count-then-insert is otherwise a race).
CREATE FUNCTION ccproxy_claim_stream_slot(p_scope text, p_slot text, p_limit int, p_lease_ms int)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE held int;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('ccproxy_stream_slots'), hashtext(p_scope));
  DELETE FROM stream_slots WHERE scope = p_scope AND expires_at <= clock_timestamp();
  SELECT count(*) INTO held FROM stream_slots WHERE scope = p_scope;
  IF held >= p_limit THEN
    RETURN false;
  END IF;
  INSERT INTO stream_slots (scope, slot, expires_at)
    VALUES (p_scope, p_slot, clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0));
  RETURN true;
END;
$$;

-- Down Migration
DROP FUNCTION ccproxy_claim_stream_slot(text, text, int, int);
DROP TABLE stream_slots;
DROP TABLE rate_windows;
DROP INDEX usage_aggregates_day_key;
DROP INDEX usage_aggregates_day_user;
DROP TABLE team_budgets;
ALTER TABLE access_keys DROP COLUMN limits;
ALTER TABLE users DROP COLUMN limits;

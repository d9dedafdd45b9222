-- Up Migration

-- The request log: one token_usage row per authenticated request, failures included. A request
-- that reported no usage (an error answer, a proxy failure, a cut-off stream before any usage)
-- is stored with metered = false: zero tokens, no cost, never added to usage_aggregates, and its
-- provider NULL when no upstream was reached. error_code is the proxy's PRX_ code when the proxy
-- itself answered the failure.
ALTER TABLE token_usage
  ADD COLUMN metered boolean NOT NULL DEFAULT true,
  ADD COLUMN error_code text,
  ALTER COLUMN provider DROP NOT NULL;
CREATE INDEX token_usage_user_time ON token_usage (user_id, occurred_at);

-- Why the current failure streak happened: the reason of each Plan failure counted in it
-- ('status_529', 'unreachable'), the last 20, reset with the streak.
ALTER TABLE circuit_breakers ADD COLUMN streak_reasons text[] NOT NULL DEFAULT '{}';

-- One row per time a key's breaker opened: when, why, until when. Written by a trigger on the
-- breaker row's own transitions, so every replica's transition is recorded exactly once, in the
-- transaction that made it, with no extra round trip on the proxy's path.
CREATE TABLE breaker_events (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  access_key_id     bigint NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
  opened_at         timestamptz NOT NULL,
  -- NULL while still open (or half-open).
  closed_at         timestamptz,
  failures          integer NOT NULL,
  reasons           text[] NOT NULL DEFAULT '{}',
  -- Half-open trials that failed and opened it again.
  reopened          integer NOT NULL DEFAULT 0
);
CREATE INDEX breaker_events_key_opened ON breaker_events (access_key_id, opened_at);
CREATE INDEX breaker_events_opened ON breaker_events (opened_at);

CREATE FUNCTION ccproxy_breaker_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was_open timestamptz := CASE WHEN TG_OP = 'UPDATE' THEN OLD.opened_at END;
BEGIN
  IF NEW.opened_at IS NOT NULL AND was_open IS NULL THEN
    INSERT INTO breaker_events (access_key_id, opened_at, failures, reasons)
    VALUES (NEW.access_key_id, NEW.opened_at, NEW.consecutive_failures, NEW.streak_reasons);
  ELSIF NEW.opened_at IS NOT NULL AND NEW.opened_at <> was_open THEN
    UPDATE breaker_events SET reopened = reopened + 1 WHERE access_key_id = NEW.access_key_id AND closed_at IS NULL;
  ELSIF NEW.opened_at IS NULL AND was_open IS NOT NULL THEN
    UPDATE breaker_events SET closed_at = now() WHERE access_key_id = NEW.access_key_id AND closed_at IS NULL;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER circuit_breakers_events AFTER INSERT OR UPDATE OF opened_at ON circuit_breakers
  FOR EACH ROW EXECUTE FUNCTION ccproxy_breaker_events();

-- Down Migration
DROP TRIGGER circuit_breakers_events ON circuit_breakers;
DROP FUNCTION ccproxy_breaker_events();
DROP TABLE breaker_events;
ALTER TABLE circuit_breakers DROP COLUMN streak_reasons;
DROP INDEX token_usage_user_time;
DELETE FROM token_usage WHERE provider IS NULL;
ALTER TABLE token_usage DROP COLUMN metered, DROP COLUMN error_code, ALTER COLUMN provider SET NOT NULL;

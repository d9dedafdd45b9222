-- Up Migration

-- One row per access key whose Plan upstream has failed: shared by every proxy replica, so a
-- replica that trips the breaker tells the others and a restarted replica knows the state.
CREATE TABLE circuit_breakers (
  access_key_id          bigint PRIMARY KEY REFERENCES access_keys (id) ON DELETE CASCADE,
  consecutive_failures   integer NOT NULL DEFAULT 0,
  -- First failure of the current streak; a streak older than the window starts over.
  streak_started_at      timestamptz,
  -- Set while open; once older than the open period the breaker is half-open.
  opened_at              timestamptz,
  -- The one half-open trial request in flight, claimed atomically by one replica.
  trial_started_at       timestamptz,
  last_failover_at       timestamptz,
  updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION ccproxy_notify_breaker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ccproxy_breakers', COALESCE(NEW.access_key_id, OLD.access_key_id)::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER circuit_breakers_notify AFTER INSERT OR UPDATE OR DELETE ON circuit_breakers
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_breaker();

-- Down Migration
DROP TABLE circuit_breakers;
DROP FUNCTION ccproxy_notify_breaker();

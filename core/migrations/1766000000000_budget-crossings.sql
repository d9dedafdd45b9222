-- Up Migration

-- A budget crossing its soft limit or being spent, once per budget, period and kind: the proxy
-- replica that sees it first inserts the row (the others' inserts are no-ops), and the operator
-- turns each unreported row into a Kubernetes Event on the resource whose budget it is, then
-- marks it reported (an operator watching one namespace claims only that namespace's). scope: key:<access_keys.id>, user:<users.id> or team:<namespace>.
CREATE TABLE budget_crossings (
  scope         text NOT NULL,
  namespace     text NOT NULL,
  period        text NOT NULL CHECK (period IN ('day', 'month')),
  period_start  timestamptz NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('SoftLimit', 'Exhausted')),
  percent       int NOT NULL,
  message       text NOT NULL,
  resets_at     timestamptz NOT NULL,
  crossed_at    timestamptz NOT NULL DEFAULT now(),
  reported_at   timestamptz,
  PRIMARY KEY (scope, period, period_start, kind)
);
CREATE INDEX budget_crossings_unreported ON budget_crossings (crossed_at) WHERE reported_at IS NULL;

CREATE FUNCTION ccproxy_notify_budget_crossing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ccproxy_budget_crossings', NEW.scope);
  RETURN NULL;
END;
$$;
CREATE TRIGGER budget_crossings_notify AFTER INSERT ON budget_crossings
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_budget_crossing();

-- Down Migration
DROP TRIGGER budget_crossings_notify ON budget_crossings;
DROP FUNCTION ccproxy_notify_budget_crossing();
DROP TABLE budget_crossings;

-- Up Migration

-- Every admin mutation and login, with the identity that did it (OIDC subject and email, or
-- 'break-glass' for the local password). Never a key, a secret or a request body: only what
-- was done to which resource and how it ended.
CREATE TABLE admin_audit (
  id bigserial PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor_method text NOT NULL CHECK (actor_method IN ('oidc', 'break-glass', 'anonymous')),
  actor_subject text NOT NULL,
  actor_email text,
  actor_role text,
  action text NOT NULL,
  resource_kind text,
  namespace text,
  name text,
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  status int NOT NULL,
  detail text,
  request_id text
);
CREATE INDEX admin_audit_occurred_at ON admin_audit (occurred_at DESC, id DESC);
CREATE INDEX admin_audit_namespace ON admin_audit (namespace, occurred_at DESC);

-- Down Migration
DROP TABLE admin_audit;

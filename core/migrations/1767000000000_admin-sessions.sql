-- Up Migration

-- Admin sessions, shared by every admin replica: a session token (an HS256 JWT) is accepted only
-- while its row here exists, is not revoked and has not expired. Logout and "end session" set
-- revoked_at, which every replica sees within its cache's staleness bound (1 s, admin/src/
-- session-records.ts). The role is not stored as the session's truth: for single sign-on the
-- groups are, and each request maps them through the current role table; role_at_login is what
-- the table said at sign-in, for the Sessions list. credential: for the break-glass login, a
-- fingerprint of the password hash it signed in with (a changed password ends those sessions).
CREATE TABLE admin_sessions (
  id             text PRIMARY KEY,
  subject        text NOT NULL,
  method         text NOT NULL CHECK (method IN ('oidc', 'break-glass')),
  email          text,
  email_verified boolean NOT NULL DEFAULT false,
  name           text,
  groups         text[] NOT NULL DEFAULT '{}',
  role_at_login  text NOT NULL,
  credential     text,
  issued_at      timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz,
  revoked_by     text
);
CREATE INDEX admin_sessions_subject ON admin_sessions (subject);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

-- Down Migration
DROP TABLE admin_sessions;

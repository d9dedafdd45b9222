-- Up Migration

-- Every row that comes from a Kubernetes resource carries its namespace/name/uid, so an
-- admin can trace a row back to the object (and the operator can find rows whose object is gone).

CREATE TABLE users (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  namespace     text NOT NULL,
  name          text NOT NULL,
  uid           text NOT NULL,
  display_name  text NOT NULL DEFAULT '',
  description   text NOT NULL DEFAULT '',
  suspended     boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace, name)
);

CREATE TABLE access_keys (
  id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  namespace                 text NOT NULL,
  name                      text NOT NULL,
  uid                       text NOT NULL,
  user_id                   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- HMAC-SHA256 (server secret) of the key, hex; the key itself is never stored.
  key_hash                  text NOT NULL UNIQUE,
  key_prefix                text NOT NULL,
  status                    text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  routing                   text NOT NULL DEFAULT 'PlanWithFailover' CHECK (routing IN ('PlanWithFailover', 'PlanOnly', 'BedrockOnly')),
  bedrock_region            text,
  bedrock_api               text NOT NULL DEFAULT 'Converse' CHECK (bedrock_api IN ('Converse', 'InvokeModel')),
  bedrock_model             text,
  bedrock_model_map         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Rotation: the previous key keeps working until previous_key_expires_at.
  previous_key_hash         text UNIQUE,
  previous_key_expires_at   timestamptz,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace, name)
);
CREATE INDEX access_keys_user_id ON access_keys (user_id);

CREATE TABLE bedrock_keys (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  namespace       text NOT NULL,
  name            text NOT NULL,
  uid             text NOT NULL,
  access_key_id   bigint NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
  -- Envelope: data key encrypted by KMS (or the local key), API key encrypted by the data key.
  ciphertext      bytea NOT NULL,
  fingerprint     text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (namespace, name)
);
CREATE INDEX bedrock_keys_access_key_id ON bedrock_keys (access_key_id);

CREATE TABLE token_usage (
  request_id              text PRIMARY KEY,
  occurred_at             timestamptz NOT NULL,
  user_id                 bigint,
  access_key_id           bigint,
  provider                text NOT NULL CHECK (provider IN ('plan', 'bedrock')),
  failover                boolean NOT NULL DEFAULT false,
  model_requested         text,
  model_served            text,
  input_tokens            bigint NOT NULL DEFAULT 0,
  output_tokens           bigint NOT NULL DEFAULT 0,
  cache_read_tokens       bigint NOT NULL DEFAULT 0,
  cache_creation_tokens   bigint NOT NULL DEFAULT 0,
  latency_ms              integer,
  ttfb_ms                 integer,
  status                  integer,
  complete                boolean NOT NULL DEFAULT true
);
CREATE INDEX token_usage_occurred_at ON token_usage (occurred_at);
CREATE INDEX token_usage_key_time ON token_usage (access_key_id, occurred_at);

CREATE TABLE usage_aggregates (
  bucket                  text NOT NULL CHECK (bucket IN ('hour', 'day')),
  bucket_start            timestamptz NOT NULL,
  user_id                 bigint NOT NULL,
  access_key_id           bigint NOT NULL,
  provider                text NOT NULL CHECK (provider IN ('plan', 'bedrock')),
  requests                bigint NOT NULL DEFAULT 0,
  failovers               bigint NOT NULL DEFAULT 0,
  input_tokens            bigint NOT NULL DEFAULT 0,
  output_tokens           bigint NOT NULL DEFAULT 0,
  cache_read_tokens       bigint NOT NULL DEFAULT 0,
  cache_creation_tokens   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, bucket_start, user_id, access_key_id, provider)
);

-- Any change that can affect whether a key authenticates wakes every proxy replica, which
-- then drops its key cache: revocation takes effect everywhere within a round trip.
CREATE FUNCTION ccproxy_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ccproxy_keys', TG_TABLE_NAME);
  RETURN NULL;
END;
$$;
CREATE TRIGGER access_keys_notify AFTER INSERT OR UPDATE OR DELETE ON access_keys
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();

-- Down Migration
DROP TABLE usage_aggregates;
DROP TABLE token_usage;
DROP TABLE bedrock_keys;
DROP TABLE access_keys;
DROP TABLE users;
DROP FUNCTION ccproxy_notify_keys();

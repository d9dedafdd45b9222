-- Up Migration

-- Statement-level triggers fire even when an upsert changes nothing, so every level-triggered
-- resync of the control plane flushed every proxy's key cache. Row-level triggers fire only for
-- rows actually written (the upserts skip unchanged rows); Postgres folds identical
-- notifications within a transaction into one.
DROP TRIGGER access_keys_notify ON access_keys;
DROP TRIGGER users_notify ON users;
DROP TRIGGER bedrock_keys_notify ON bedrock_keys;
CREATE TRIGGER access_keys_notify AFTER INSERT OR UPDATE OR DELETE ON access_keys
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_keys();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_keys();
CREATE TRIGGER bedrock_keys_notify AFTER INSERT OR UPDATE OR DELETE ON bedrock_keys
  FOR EACH ROW EXECUTE FUNCTION ccproxy_notify_keys();

-- Down Migration
DROP TRIGGER access_keys_notify ON access_keys;
DROP TRIGGER users_notify ON users;
DROP TRIGGER bedrock_keys_notify ON bedrock_keys;
CREATE TRIGGER access_keys_notify AFTER INSERT OR UPDATE OR DELETE ON access_keys
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();
CREATE TRIGGER bedrock_keys_notify AFTER INSERT OR UPDATE OR DELETE ON bedrock_keys
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();

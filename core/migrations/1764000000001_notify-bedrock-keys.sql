-- Up Migration
-- A changed or removed Bedrock key must reach the proxies' decrypted-key caches at once too.
CREATE TRIGGER bedrock_keys_notify AFTER INSERT OR UPDATE OR DELETE ON bedrock_keys
  FOR EACH STATEMENT EXECUTE FUNCTION ccproxy_notify_keys();

-- Down Migration
DROP TRIGGER bedrock_keys_notify ON bedrock_keys;

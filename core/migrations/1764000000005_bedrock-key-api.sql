-- Up Migration

-- The Bedrock API (InvokeModel or Converse) may be chosen on the BedrockKey as a default for
-- its AccessKey. Precedence, resolved when the proxy reads a key: the AccessKey's own
-- spec.bedrock.api (access_keys.bedrock_api, NULL when unset), then the newest BedrockKey's
-- spec.api (bedrock_keys.api, NULL when unset), then InvokeModel.
ALTER TABLE access_keys
  ALTER COLUMN bedrock_api DROP NOT NULL,
  ALTER COLUMN bedrock_api DROP DEFAULT;
ALTER TABLE bedrock_keys
  ADD COLUMN api text CHECK (api IN ('Converse', 'InvokeModel'));

-- Down Migration
ALTER TABLE bedrock_keys DROP COLUMN api;
UPDATE access_keys SET bedrock_api = 'InvokeModel' WHERE bedrock_api IS NULL;
ALTER TABLE access_keys
  ALTER COLUMN bedrock_api SET DEFAULT 'Converse',
  ALTER COLUMN bedrock_api SET NOT NULL;

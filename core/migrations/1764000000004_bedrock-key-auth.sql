-- Up Migration

-- How a BedrockKey authenticates to Bedrock: a long-lived Bedrock API key (stored envelope-
-- encrypted, as before) or the proxy's own AWS identity (SigV4 with the default credential
-- chain: IRSA, EKS Pod Identity, a profile), which stores no secret at all.
ALTER TABLE bedrock_keys
  ADD COLUMN auth text NOT NULL DEFAULT 'ApiKey' CHECK (auth IN ('ApiKey', 'AwsIdentity')),
  ALTER COLUMN ciphertext DROP NOT NULL,
  ALTER COLUMN fingerprint DROP NOT NULL,
  ADD CONSTRAINT bedrock_keys_secret_iff_api_key
    CHECK ((auth = 'ApiKey') = (ciphertext IS NOT NULL AND fingerprint IS NOT NULL));

-- Down Migration
DELETE FROM bedrock_keys WHERE auth <> 'ApiKey';
ALTER TABLE bedrock_keys
  DROP CONSTRAINT bedrock_keys_secret_iff_api_key,
  DROP COLUMN auth,
  ALTER COLUMN ciphertext SET NOT NULL,
  ALTER COLUMN fingerprint SET NOT NULL;

import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

/**
 * Keys and secrets, in their own stack so the database and the cluster can be replaced without
 * losing them: the KMS key that wraps Bedrock API keys, the key that encrypts the database, and
 * the runtime secrets (hasher secret, admin credentials, optional default Plan API key).
 */
export class SecretsStack extends Stack {
  /** CCPROXY_KMS_KEY_ID: the operator encrypts Bedrock keys' data keys with it, the proxy decrypts. */
  readonly bedrockKey: kms.Key;
  readonly databaseKey: kms.Key;
  readonly hasherSecret: secretsmanager.Secret;
  readonly adminSecret: secretsmanager.Secret;
  readonly planApiKeySecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: StackProps) {
    super(scope, id, props);
    // Losing either key makes every stored Bedrock key or the database unreadable: retain them.
    this.bedrockKey = new kms.Key(this, 'BedrockKeysKey', {
      alias: `alias/${settings.prefix}/bedrock-keys`,
      description: 'Wraps the data keys of Bedrock API keys (claude-code-proxy)',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    this.databaseKey = new kms.Key(this, 'DatabaseKey', {
      alias: `alias/${settings.prefix}/database`,
      description: 'Encrypts the claude-code-proxy Aurora cluster',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
    });
    this.hasherSecret = new secretsmanager.Secret(this, 'KeyHasherSecret', {
      secretName: `${settings.prefix}/key-hasher-secret`,
      description: 'CCPROXY_KEY_HASHER_SECRET: HMAC secret of access keys (changing it invalidates every key)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.adminSecret = new secretsmanager.Secret(this, 'AdminCredentials', {
      secretName: `${settings.prefix}/admin`,
      description: 'Admin login: username, password (the admin hashes it) and session secret',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: 'admin' }),
        generateStringKey: 'password',
        passwordLength: 32,
        excludePunctuation: true,
      },
    });
    this.planApiKeySecret = new secretsmanager.Secret(this, 'PlanApiKey', {
      secretName: `${settings.prefix}/plan-api-key`,
      description:
        'CCPROXY_PLAN_API_KEY (optional): default Anthropic key for clients that send none; put the value in after deploy',
    });
  }
}

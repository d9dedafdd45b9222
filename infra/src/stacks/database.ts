import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';
import { runtimeSecretNames } from './secrets.ts';

export interface DatabaseStackProps extends StackProps {
  /** The estate's VPC; without it (existing-cluster), the cluster's VPC from context. */
  readonly vpc?: ec2.IVpc;
  readonly key: kms.IKey;
}

/** Aurora PostgreSQL Serverless v2 in the private subnets, encrypted with our key, never public. */
export class DatabaseStack extends Stack {
  readonly cluster: rds.DatabaseCluster;
  readonly rotation: secretsmanager.SecretRotation;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: DatabaseStackProps) {
    super(scope, id, props);
    const vpc =
      props.vpc ??
      ec2.Vpc.fromVpcAttributes(this, 'ClusterVpc', {
        vpcId: settings.vpcId,
        availabilityZones: [...settings.availabilityZones],
        privateSubnetIds: [...settings.privateSubnetIds],
      });
    this.cluster = new rds.DatabaseCluster(this, 'Aurora', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_17_9 }),
      // The secret stays on the Secrets Manager key, so readers need no grant on the storage key.
      credentials: rds.Credentials.fromGeneratedSecret('ccproxy', {
        secretName: runtimeSecretNames(settings.prefix).database,
      }),
      defaultDatabaseName: 'ccproxy',
      writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false }),
      // production: a reader in the second AZ, a failover target scaling to the same floor.
      readers: Array.from({ length: settings.dbReaders }, (_, n) =>
        rds.ClusterInstance.serverlessV2(n === 0 ? 'reader' : `reader${n + 1}`, {
          scaleWithWriter: true,
          publiclyAccessible: false,
        }),
      ),
      serverlessV2MinCapacity: settings.dbMinAcu,
      serverlessV2MaxCapacity: settings.dbMaxAcu,
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      storageEncrypted: true,
      storageEncryptionKey: props.key,
      backup: { retention: Duration.days(settings.backupRetentionDays), preferredWindow: '17:00-18:00' },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      // IAM database authentication for people and tools (`rds-db:connect` tokens instead of a
      // shared password); the pods keep the Aurora-managed secret, which rotates (below).
      iamAuthentication: true,
      // The free tier (7 days) of Performance Insights: top SQL and waits when the ACU alarm fires.
      enablePerformanceInsights: true,
      performanceInsightRetention: rds.PerformanceInsightRetention.DEFAULT,
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: settings.logRetentionDays as logs.RetentionDays,
      // TLS only: the pods connect with sslmode=require.
      parameters: { 'rds.force_ssl': '1' },
    });
    // The master password rotates monthly (Secrets Manager's single-user rotation Lambda). The pods
    // notice the new version (DescribeSecret) and restart onto it: docs/deployment.md, "Secrets".
    this.rotation = this.cluster.addRotationSingleUser({ automaticallyAfter: Duration.days(30) });
  }
}

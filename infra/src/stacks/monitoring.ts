import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

export interface MonitoringStackProps extends StackProps {
  readonly database: rds.DatabaseCluster;
}

/** The proxy's EMF metrics (namespace ClaudeCodeProxy, from the pod logs), one metric per alarm. */
const proxyMetric = (metricName: string, statistic: string, dimensionsMap?: Record<string, string>) =>
  new cloudwatch.Metric({
    namespace: 'ClaudeCodeProxy',
    metricName,
    statistic,
    period: Duration.minutes(5),
    ...(dimensionsMap === undefined ? {} : { dimensionsMap }),
  });

/**
 * The seed's alarms, to one SNS topic: errors, latency, failovers and open breakers from the
 * proxy's metrics, and the database's capacity. Missing data is "not breaching": no traffic is
 * not an incident.
 */
export class MonitoringStack extends Stack {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, settings: InfraSettings, props: MonitoringStackProps) {
    super(scope, id, props);
    this.topic = new sns.Topic(this, 'Alarms', { displayName: 'claude-code-proxy alarms', enforceSSL: true });
    if (settings.alarmEmail !== '')
      this.topic.addSubscription(new subscriptions.EmailSubscription(settings.alarmEmail));
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, description: string, periods = 3) =>
      new cloudwatch.Alarm(this, name, {
        alarmName: `${settings.prefix}-${name}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: periods,
        datapointsToAlarm: periods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const planRequests = proxyMetric('RequestCount', 'Sum', { Provider: 'plan' });
    const bedrockRequests = proxyMetric('RequestCount', 'Sum', { Provider: 'bedrock' });
    const errorRate = new cloudwatch.MathExpression({
      expression: '100 * (e1 + e2) / MAX([r1 + r2, 1])',
      usingMetrics: {
        e1: proxyMetric('ErrorCount', 'Sum', { ErrorType: 'api_error', Provider: 'plan' }),
        e2: proxyMetric('ErrorCount', 'Sum', { ErrorType: 'api_error', Provider: 'bedrock' }),
        r1: planRequests,
        r2: bedrockRequests,
      },
      label: 'api_error % of requests',
      period: Duration.minutes(5),
    });
    const failoverRate = new cloudwatch.MathExpression({
      expression: '100 * f / MAX([r1 + r2, 1])',
      usingMetrics: { f: proxyMetric('FallbackCount', 'Sum'), r1: planRequests, r2: bedrockRequests },
      label: 'failovers % of requests',
      period: Duration.minutes(5),
    });
    this.alarms = [
      alarm('error-rate', errorRate, 5, 'More than 5 % of requests end in api_error'),
      alarm(
        'latency-p95',
        proxyMetric('RequestLatency', 'p95', { Provider: 'plan' }),
        30_000,
        'p95 Plan request latency above 30 s',
      ),
      alarm(
        'failover-rate',
        failoverRate,
        20,
        'More than 20 % of requests fail over to Bedrock (Anthropic is rate-limiting or failing)',
      ),
      alarm(
        'circuit-open',
        proxyMetric('CircuitOpen', 'Maximum'),
        0,
        "Some access key's circuit breaker stays open (its requests go to Bedrock)",
        6,
      ),
      alarm(
        'database-acu',
        props.database.metricServerlessDatabaseCapacity({ statistic: 'Average', period: Duration.minutes(5) }),
        settings.dbMaxAcu * 0.9,
        'Aurora runs at its ACU ceiling',
      ),
      alarm(
        'database-cpu',
        props.database.metricCPUUtilization({ period: Duration.minutes(5) }),
        80,
        'Aurora CPU above 80 %',
      ),
    ];
    for (const a of this.alarms) a.addAlarmAction(new actions.SnsAction(this.topic));
  }
}

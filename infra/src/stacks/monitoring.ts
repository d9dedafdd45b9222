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
  readonly dashboard: cloudwatch.Dashboard;

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
    const failedShare = new cloudwatch.MathExpression({
      expression: '100 * failed / MAX([requests, 1])',
      usingMetrics: { failed: proxyMetric('FailedRequests', 'Sum'), requests: proxyMetric('Requests', 'Sum') },
      label: 'failed answers % of requests',
      period: Duration.minutes(5),
    });
    const failoverShare = new cloudwatch.MathExpression({
      expression: '100 * failovers / MAX([requests, 1])',
      usingMetrics: { failovers: proxyMetric('FallbackCount', 'Sum'), requests: proxyMetric('Requests', 'Sum') },
      label: 'failovers % of requests',
      period: Duration.minutes(5),
    });
    const bedrockOutputTokens = proxyMetric('BedrockTokensUsed', 'Sum', { TokenType: 'output' });
    this.alarms = [
      // Every failed answer, whatever its provider (a refusal before any upstream included): a
      // 5xx, or a stream that ended in `event: error`. A client's 4xx is not a failure.
      alarm('failed-requests', failedShare, 5, 'More than 5 % of answers fail (5xx, or a stream cut by event: error)'),
      // Time to the response head: what a developer waits for. Whole-stream duration is not a
      // latency signal (a long answer streams for minutes).
      alarm(
        'ttfb-p95',
        proxyMetric('TimeToFirstByte', 'p95', { Provider: 'plan' }),
        10_000,
        'p95 time to first byte on the Plan path above 10 s',
      ),
      alarm(
        'failover-rate',
        failoverShare,
        20,
        'More than 20 % of requests fail over to Bedrock (Anthropic is rate-limiting or failing)',
      ),
      alarm(
        'circuit-open',
        proxyMetric('CircuitOpen', 'Maximum'),
        0,
        "Some access key's circuit breaker is open (its requests go to Bedrock)",
        1,
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
      // Paid Bedrock tokens outside their usual band (a runaway client, or a failover nobody noticed).
      new cloudwatch.AnomalyDetectionAlarm(this, 'bedrock-tokens-anomaly', {
        alarmName: `${settings.prefix}-bedrock-tokens-anomaly`,
        alarmDescription: 'Bedrock output tokens above their usual band (anomaly detection, 3 standard deviations)',
        metric: bedrockOutputTokens,
        stdDevs: 3,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    ];
    this.dashboard = dashboard(this, settings.prefix, { failedShare, failoverShare, alarms: this.alarms });
    for (const a of this.alarms) a.addAlarmAction(new actions.SnsAction(this.topic));
  }
}

/** One page over the alarms' signals: requests, TTFB, failures, failovers, breakers, Bedrock tokens, spend. */
function dashboard(
  scope: Construct,
  prefix: string,
  signals: { failedShare: cloudwatch.IMetric; failoverShare: cloudwatch.IMetric; alarms: cloudwatch.Alarm[] },
): cloudwatch.Dashboard {
  const byProvider = (metricName: string, statistic: string, providers = ['plan', 'bedrock', 'none']) =>
    providers.map((provider) =>
      proxyMetric(metricName, statistic, { Provider: provider }).with({
        label: `${metricName} ${statistic} ${provider}`,
      }),
    );
  const board = new cloudwatch.Dashboard(scope, 'Dashboard', { dashboardName: `${prefix}-proxy` });
  board.addWidgets(
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: signals.alarms, width: 24 }),
    new cloudwatch.GraphWidget({ title: 'Requests by provider', left: byProvider('RequestCount', 'Sum'), width: 8 }),
    new cloudwatch.GraphWidget({
      title: 'Time to first byte p50 / p95 (ms)',
      left: [
        ...byProvider('TimeToFirstByte', 'p50', ['plan', 'bedrock']),
        ...byProvider('TimeToFirstByte', 'p95', ['plan', 'bedrock']),
      ],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Failed answers and failovers (% of requests)',
      left: [signals.failedShare, signals.failoverShare],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Open circuit breakers',
      left: [proxyMetric('CircuitOpen', 'Maximum')],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Bedrock tokens by type',
      left: ['input', 'output', 'cacheRead', 'cacheCreation'].map((type) =>
        proxyMetric('BedrockTokensUsed', 'Sum', { TokenType: type }).with({ label: type }),
      ),
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Errors by type (plan)',
      left: ['api_error', 'overloaded_error', 'rate_limit_error', 'timeout_error'].map((type) =>
        proxyMetric('ErrorCount', 'Sum', { ErrorType: type, Provider: 'plan' }).with({ label: type }),
      ),
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      // Priced by the proxy with the usage store's table; requests whose model it lacks are counted apart.
      title: 'Spend by provider (USD) and unpriced requests',
      left: byProvider('SpendUSD', 'Sum', ['plan', 'bedrock']),
      right: byProvider('UnpricedRequests', 'Sum', ['plan', 'bedrock']),
      leftYAxis: { label: 'USD', showUnits: false },
      rightYAxis: { label: 'requests', showUnits: false },
      width: 24,
    }),
  );
  return board;
}

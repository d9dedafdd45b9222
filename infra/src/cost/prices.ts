/**
 * AWS list prices the cost estimate uses: us-east-1, on-demand, entered by hand from the
 * services' pricing pages as known on the date below (nothing fetches them: no network in the
 * build). Re-check them before relying on a figure, and expect other regions to differ
 * (ap-northeast-2 is about 10–25 % higher on most lines).
 */
export const prices = {
  date: '2026-12-06',
  region: 'us-east-1',
  hoursPerMonth: 730,
  eksClusterHour: 0.1,
  fargateVcpuHour: 0.04048,
  fargateGbHour: 0.004445,
  natGatewayHour: 0.045,
  natGatewayGb: 0.045,
  t4gNanoHour: 0.0042,
  ebsGp3GbMonth: 0.08,
  publicIpv4Hour: 0.005,
  albHour: 0.0225,
  albLcuHour: 0.008,
  interfaceEndpointAzHour: 0.01,
  auroraAcuHour: 0.12,
  auroraStorageGbMonth: 0.1,
  kmsKeyMonth: 1,
  secretMonth: 0.4,
  alarmMonth: 0.1,
  logsIngestGb: 0.5,
  dataOutGb: 0.09,
} as const;

/** What the estimate cannot read from a template: traffic. Light use by a few dozen developers. */
export const usage = {
  /** Average ALB load units (an idle ALB uses almost none; 1 LCU = 25 new connections/s or 1 GB/h). */
  albLcus: 0.2,
  /** Request bodies to Anthropic and Bedrock leaving through NAT, per month. */
  egressGb: 10,
  /** Container logs and flow logs ingested, per month. */
  logsGb: 2,
  auroraStorageGb: 2,
  /** Fargate adds this to each pod's memory for the kubelet and its agents. */
  fargatePodOverheadMb: 256,
} as const;

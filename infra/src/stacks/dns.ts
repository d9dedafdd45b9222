import { Duration, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as eks from 'aws-cdk-lib/aws-eks-v2';
import { KubernetesObjectValue } from 'aws-cdk-lib/aws-eks-v2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

/** The estate's hosted zone (context hostedZoneId + hostedZoneName), if it was given one. */
export function hostedZone(scope: Construct, settings: InfraSettings): route53.IHostedZone | undefined {
  if (settings.hostedZoneId === '') return undefined;
  const existing = scope.node.tryFindChild('Zone') as route53.IHostedZone | undefined;
  return (
    existing ??
    route53.HostedZone.fromHostedZoneAttributes(scope, 'Zone', {
      hostedZoneId: settings.hostedZoneId,
      zoneName: settings.hostedZoneName,
    })
  );
}

/**
 * The ALB's certificate: `certificateArn` when one is given (it wins: an existing certificate stays
 * an option); else, with a hosted zone, an ACM certificate for `domain` (and `adminDomain`) that
 * ACM validates through DNS records in that zone; else none (an HTTP-less listener cannot start).
 */
export function certificateArnFor(scope: Construct, settings: InfraSettings): string {
  if (settings.certificateArn !== '') return settings.certificateArn;
  const zone = hostedZone(scope, settings);
  if (zone === undefined) return '';
  const certificate = new acm.Certificate(scope, 'Certificate', {
    domainName: settings.domain,
    ...(settings.adminDomain === '' ? {} : { subjectAlternativeNames: [settings.adminDomain] }),
    validation: acm.CertificateValidation.fromDns(zone),
  });
  return certificate.certificateArn;
}

/** The ALB's name, set on the Ingress so the alias can find it (the controller would make one up). */
export const albName = (settings: InfraSettings) => `${settings.prefix}-alb`.slice(0, 32);

/**
 * Route 53 alias records (A) for `domain` and `adminDomain` to the ALB the load balancer
 * controller makes for the Ingress: wait until the Ingress reports its address, then read the
 * ALB's DNS name and canonical zone (DescribeLoadBalancers by the name the Ingress gives it).
 */
export function aliasToAlb(
  scope: Construct,
  settings: InfraSettings,
  cluster: eks.ICluster,
  ingress: { readonly name: string; readonly namespace: string; readonly after: Construct },
): route53.CfnRecordSet[] {
  const zone = hostedZone(scope, settings);
  if (zone === undefined) return [];
  const ready = new KubernetesObjectValue(scope, 'IngressAddress', {
    cluster,
    objectType: 'ingress',
    objectName: ingress.name,
    objectNamespace: ingress.namespace,
    jsonPath: '.status.loadBalancer.ingress[0].hostname',
    timeout: Duration.minutes(10),
  });
  ready.node.addDependency(ingress.after);
  const describe = new cr.AwsCustomResource(scope, 'AlbLookup', {
    onUpdate: {
      service: 'ElasticLoadBalancingV2',
      action: 'describeLoadBalancers',
      parameters: { Names: [albName(settings)] },
      physicalResourceId: cr.PhysicalResourceId.of(albName(settings)),
      outputPaths: ['LoadBalancers.0.DNSName', 'LoadBalancers.0.CanonicalHostedZoneId'],
    },
    // DescribeLoadBalancers cannot be scoped to one load balancer (it has no resource-level permission).
    policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: cr.AwsCustomResourcePolicy.ANY_RESOURCE }),
    logGroup: new logs.LogGroup(scope, 'AlbLookupLogs', {
      retention: settings.logRetentionDays as logs.RetentionDays,
    }),
    installLatestAwsSdk: false,
  });
  describe.node.addDependency(ready);
  Validations.of(describe).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'elasticloadbalancing:DescribeLoadBalancers has no resource-level permissions',
  });
  const hosts = [settings.domain, ...(settings.adminDomain === '' ? [] : [settings.adminDomain])];
  return hosts.map(
    (host, n) =>
      new route53.CfnRecordSet(scope, n === 0 ? 'Alias' : 'AdminAlias', {
        hostedZoneId: zone.hostedZoneId,
        name: host,
        type: 'A',
        aliasTarget: {
          dnsName: describe.getResponseField('LoadBalancers.0.DNSName'),
          hostedZoneId: describe.getResponseField('LoadBalancers.0.CanonicalHostedZoneId'),
          evaluateTargetHealth: true,
        },
      }),
  );
}

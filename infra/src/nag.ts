import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { InfraStacks } from './app.ts';

/**
 * cdk-nag's AwsSolutions findings the estate accepts, each on the constructs it concerns (never
 * a whole stack) and with its reason. Everything else is an error at `cdk synth` (main.ts) and in
 * `npm test` (infra/test/nag.test.ts). Most are aws-cdk-lib's own providers and the policies EKS
 * and the AWS Load Balancer Controller document as required.
 */
interface Acknowledgement {
  /** Where the construct sits below its stack (its path without the stack's name). */
  readonly path: RegExp;
  readonly ids: readonly string[];
  readonly reason: string;
}

/** A finding of AwsSolutions-IAM4 (an AWS managed policy), as cdk-nag names it. */
const managed = (policy: string) => `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`;

const acknowledgements: readonly Acknowledgement[] = [
  {
    path: /^Cluster\/Role$/,
    ids: [managed('AmazonEKSClusterPolicy')],
    reason: 'EKS requires the AWS managed AmazonEKSClusterPolicy on the cluster role',
  },
  {
    path: /^Cluster\/KubectlProvider$/,
    ids: [
      managed('service-role/AWSLambdaBasicExecutionRole'),
      managed('service-role/AWSLambdaVPCAccessExecutionRole'),
      managed('AmazonEC2ContainerRegistryReadOnly'),
      // ECR Public's read-only policy, attached only in partitions that have ECR Public.
      'AwsSolutions-IAM4[Policy::{"Fn::If":["ClusterKubectlProviderHandlerHasEcrPublic69E09706",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
      'AwsSolutions-IAM5[Resource::<ClusterKubectlProviderHandler2E05C68A.Arn>:*]',
      'AwsSolutions-L1',
    ],
    reason:
      "aws-cdk-lib's kubectl provider (it applies the manifests at deploy time): its managed Lambda policies, its invoke permission on its own handler's versions, and the runtime aws-cdk-lib pins",
  },
  {
    path: /^Cluster\/fargate-profile-[^/]+\/PodExecutionRole$/,
    ids: [
      managed('AmazonEKSFargatePodExecutionRolePolicy'),
      'AwsSolutions-IAM5[Resource::<PodLogs17A126C3.Arn>:log-stream:*]',
    ],
    reason:
      "Fargate's documented pod execution policy (image pulls), and log streams Fluent Bit names per pod, inside the one pod log group",
  },
  {
    path: /AlbController$/,
    ids: [
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:*:*:security-group/*]',
      ...['targetgroup/*/*', 'loadbalancer/net/*/*', 'loadbalancer/app/*/*']
        .concat(['listener', 'listener-rule'].flatMap((kind) => [`${kind}/net/*/*/*`, `${kind}/app/*/*/*`]))
        .map((resource) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:*:*:${resource}]`),
    ],
    reason:
      'The AWS Load Balancer Controller policy as its project publishes it: it creates load balancers, target groups and security groups whose names it generates; tag conditions (elbv2.k8s.aws/cluster) scope its writes',
  },
  {
    path: /^LogRetention[0-9a-f]+$/,
    ids: [managed('service-role/AWSLambdaBasicExecutionRole'), 'AwsSolutions-IAM5[Resource::*]'],
    reason: "aws-cdk-lib's log-retention provider (sets the retention of the Aurora log group, which RDS creates)",
  },
  {
    path: /^AWS679f53fac002430cb0da5b7982bd2287$/,
    ids: [managed('service-role/AWSLambdaBasicExecutionRole')],
    reason:
      "aws-cdk-lib's AwsCustomResource function (looks up the ALB for the DNS alias): the basic Lambda logging policy",
  },
  {
    path: /^Vpc\/publicSubnet\d+\/NatInstance$/,
    ids: ['AwsSolutions-EC26', 'AwsSolutions-EC28', 'AwsSolutions-EC29'],
    reason:
      "dev's NAT instance (production uses NAT gateways): its root volume holds the stock AMI and no data, detailed monitoring would cost more than the instance, and CloudFormation replaces it rather than anyone terminating it",
  },
];

/** Applies the acknowledgements to the constructs they name. */
export function acknowledgeNagFindings(stacks: InfraStacks): void {
  const all: Array<Stack | undefined> = [
    stacks.network,
    stacks.secrets,
    stacks.database,
    stacks.cluster,
    stacks.existing,
    stacks.monitoring,
  ];
  for (const stack of all.filter((s) => s !== undefined))
    for (const construct of stack.node.findAll())
      for (const { path, ids, reason } of acknowledgements)
        if (path.test(relativePath(stack, construct)))
          for (const id of ids) Validations.of(construct).acknowledge({ id, reason });
}

function relativePath(stack: Stack, construct: IConstruct): string {
  return construct.node.path.slice(stack.node.path.length + 1);
}

import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import type { InfraSettings } from '../settings.ts';

/**
 * One VPC, two public and two private subnets over two AZs. production: a NAT gateway per AZ, so
 * the path to Bedrock, KMS and STS — the one failover needs — survives the loss of an AZ. dev:
 * one t4g.nano NAT instance (about $7 a month against $37 for a gateway and its address).
 */
export class NetworkStack extends Stack {
  readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, settings: InfraSettings, props: StackProps) {
    super(scope, id, props);
    const natInstance = settings.natInstance
      ? ec2.NatProvider.instanceV2({
          instanceType: new ec2.InstanceType('t4g.nano'),
          machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
          defaultAllowedTraffic: ec2.NatTrafficDirection.OUTBOUND_ONLY,
          associatePublicIpAddress: true,
        })
      : undefined;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(settings.vpcCidr),
      maxAzs: 2,
      natGateways: settings.natGateways,
      ...(natInstance === undefined ? {} : { natGatewayProvider: natInstance }),
      subnetConfiguration: [
        // The ALB discovers its subnets by these role tags.
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      flowLogs: { all: { trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    // The instance forwards what the private subnets send, and nothing else reaches it.
    if (natInstance !== undefined)
      natInstance.securityGroup.addIngressRule(
        ec2.Peer.ipv4(settings.vpcCidr),
        ec2.Port.allTraffic(),
        'NAT for the private subnets',
      );
  }
}

import { App } from 'aws-cdk-lib';
import { buildInfra } from './app.ts';

// The CDK app (infra/cdk.json): `npx cdk synth|deploy -c domain=... -c certificateArn=...`.
const app = new App();
buildInfra(app);
app.synth();

import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildInfra } from './app.ts';

// The CDK app (infra/cdk.json): `npx cdk synth|deploy -c domain=... -c certificateArn=...`.
// cdk-nag's AwsSolutions pack runs on every synth: an unacknowledged finding fails it (src/nag.ts).
const app = new App();
buildInfra(app);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();

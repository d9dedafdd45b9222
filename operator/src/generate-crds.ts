import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { admissionPolicyFile, renderAdmissionPolicy, renderCrds } from './crds.ts';

// `npm run crds`: writes crds/*.yaml and the Helm chart's copy (checked for drift by
// operator/test/crds.test.ts and cdk8s/test/chart.test.ts): the CRDs and the admission policy.
const files = { ...renderCrds(), [admissionPolicyFile]: renderAdmissionPolicy() };
for (const dir of ['../../crds/', '../../charts/claude-code-proxy/crds/'])
  for (const [file, yaml] of Object.entries(files))
    await writeFile(fileURLToPath(new URL(`${dir}${file}`, import.meta.url)), yaml);

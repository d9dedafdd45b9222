import { writeFile } from 'node:fs/promises';
import { renderValuesSchema } from './values.ts';

// `node cdk8s/src/generate-values-schema.ts`: writes the chart's values.schema.json
// (checked for drift by cdk8s/test/chart.test.ts).
await writeFile(new URL('../../charts/claude-code-proxy/values.schema.json', import.meta.url), renderValuesSchema());

import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderCrds } from './crds.ts';

// `npm run crds`: writes crds/*.yaml (checked for drift by operator/test/crds.test.ts).
const dir = fileURLToPath(new URL('../../crds/', import.meta.url));
for (const [file, yaml] of Object.entries(renderCrds())) await writeFile(`${dir}${file}`, yaml);

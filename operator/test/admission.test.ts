import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMetricsRegistry,
  findKeyByHash,
  LocalKeyWrapper,
  migrate,
  PgliteDatabase,
  type Database,
} from '@ccproxy/core';
import { crossFieldProblems, crossFieldRules, LocalOperator, parseResource } from '@ccproxy/operator';
import { badSpecs, goodSpecs, namesField, type SpecCase } from './admission-cases.ts';
import { adminConfig, ensureNamespace, hashKey, installCrds, kubeRequest, silent, uniqueName } from './kube-fixture.ts';

const plurals = { ProxyUser: 'proxyusers', AccessKey: 'accesskeys', BedrockKey: 'bedrockkeys' } as const;
const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const admin = adminConfig();
const namespace = uniqueName('admission');
let serial = 0;

const object = (c: Pick<SpecCase, 'kind' | 'spec'>, name = `case-${(serial += 1)}`) => ({
  apiVersion: 'ccproxy.io/v1alpha1',
  kind: c.kind,
  metadata: { name, namespace },
  spec: c.spec,
});

/** A create on the real API server, with the strict field validation kubectl uses. */
async function create(c: Pick<SpecCase, 'kind' | 'spec'>): Promise<{ status: number; message: string }> {
  const response = await kubeRequest(
    admin,
    'POST',
    `/apis/ccproxy.io/v1alpha1/namespaces/${namespace}/${plurals[c.kind]}?fieldValidation=Strict`,
    JSON.stringify(object(c)),
  );
  return { status: response.status, message: (JSON.parse(response.body) as { message?: string }).message ?? '' };
}

const problemsOf = (c: SpecCase) => {
  const parsed = parseResource(object(c));
  return 'problems' in parsed ? parsed.problems.join('; ') : '';
};

beforeAll(async () => {
  // CRDs and the admission policy beside them, as `kubectl apply -f crds/` installs them.
  await installCrds(admin);
  await ensureNamespace(admin, namespace);
  // A new policy takes a moment to reach the API server's admission chain.
  const probe = badSpecs.find((c) => c.name === 'BedrockOnly without bedrock') as SpecCase;
  for (let i = 0; (await create(probe)).status !== 422; i += 1) {
    if (i > 150) throw new Error('the admission policy never took effect');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 60_000);

describe('admission by the API server itself', () => {
  it.each(badSpecs.map((c) => [c.name, c] as const))('refuses %s, naming the field', async (_name, c) => {
    const { status, message } = await create(c);
    // 422 Invalid; 400 for a field the schema does not have (strict decoding, as kubectl asks).
    expect([400, 422], message).toContain(status);
    expect(namesField(message, c.field), `${message} names ${c.field}`).toBe(true);
  });

  it.each(goodSpecs.map((c) => [c.name, c] as const))('accepts %s', async (_name, c) => {
    const { status, message } = await create(c);
    expect(status, message).toBe(201);
  });

  it('accepts every ccproxy object of examples/ (the chart ships none of its own)', async () => {
    const found: Array<{ kind: SpecCase['kind']; spec: Record<string, unknown> }> = [];
    for (const entry of await readdir(examples, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
      for (const doc of parseAllDocuments(await readFile(join(entry.parentPath, entry.name), 'utf8'))) {
        const value = doc.toJS() as { apiVersion?: string; kind?: SpecCase['kind']; spec?: Record<string, unknown> };
        if (value?.apiVersion === 'ccproxy.io/v1alpha1' && value.kind !== undefined && value.spec !== undefined)
          found.push({ kind: value.kind, spec: value.spec });
      }
    }
    expect(found.length).toBeGreaterThan(5);
    for (const c of found) {
      expect(await create(c)).toMatchObject({ status: 201 });
      expect(problemsOf({ ...c, name: '', field: '' })).toBe('');
    }
  });
});

describe('resource names (the API server checks them itself; parseResource the same)', () => {
  it.each([['Alice'], ['alice\nbob'], ['alice\u202e'], ['alice..bob'], ['a'.repeat(254)]])(
    'refuses %j',
    async (name) => {
      const c = { kind: 'ProxyUser' as const, spec: {} };
      const response = await kubeRequest(
        admin,
        'POST',
        `/apis/ccproxy.io/v1alpha1/namespaces/${namespace}/proxyusers`,
        JSON.stringify(object(c, name)),
      );
      expect([400, 422], response.body).toContain(response.status);
      expect(response.body).toContain('metadata.name');
      const parsed = parseResource(object(c, name));
      expect('problems' in parsed && parsed.problems.some((p) => p.startsWith('/metadata/name'))).toBe(true);
    },
  );
});

describe('the same rules where there is no API server (parseResource)', () => {
  it.each(badSpecs.map((c) => [c.name, c] as const))('refuses %s, naming the field', (_name, c) => {
    expect(namesField(problemsOf(c), c.field), problemsOf(c)).toBe(true);
  });

  it.each(goodSpecs.map((c) => [c.name, c] as const))('accepts %s', (_name, c) => {
    expect(problemsOf(c)).toBe('');
  });
});

describe('each cross-field rule: its CEL on the API server and its JS twin agree', () => {
  const ruleMessages = new Set(crossFieldRules.map((rule) => rule.message));
  /** The cross-field verdict of the JS twins, or undefined when the schema refuses first. */
  const twinVerdict = (c: SpecCase): string[] | undefined => {
    const parsed = parseResource(object(c));
    if ('resource' in parsed) return [];
    return parsed.problems.every((p) => ruleMessages.has(p)) ? parsed.problems : undefined;
  };
  // Every AccessKey case the schema lets through to the rules, good and bad.
  const cases = [...badSpecs, ...goodSpecs].filter((c) => c.kind === 'AccessKey' && twinVerdict(c) !== undefined);

  it('every rule names its field and is broken by at least one case of the table', () => {
    expect(cases.length).toBeGreaterThan(8);
    for (const rule of crossFieldRules) {
      expect(rule.message.startsWith(`${rule.field}: `)).toBe(true);
      expect(cases.filter((c) => twinVerdict(c)?.includes(rule.message)).length, rule.message).toBeGreaterThan(0);
      expect(crossFieldProblems(rule.kind, {}).length).toBeGreaterThanOrEqual(0);
    }
  });

  it('docs/admission.md lists every rule as it is in the code (message and CEL)', async () => {
    const doc = await readFile(new URL('../../docs/admission.md', import.meta.url), 'utf8');
    for (const rule of crossFieldRules) {
      expect(doc).toContain(`\n${rule.message}\n`);
      expect(doc).toContain(`\`\`\`cel\n${rule.expression}\n\`\`\``);
    }
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const js = twinVerdict(c) ?? [];
    const { status, message } = await create(c);
    expect(status === 201, message).toBe(js.length === 0);
    for (const problem of js) expect(message).toContain(problem);
  });
});

describe('the local operator refuses a bad manifest with the same message and writes nothing', () => {
  let dir: string;
  let db: Database;
  let operator: LocalOperator;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-admission-'));
    await mkdir(join(dir, 'manifests'));
    db = await PgliteDatabase.open();
    await migrate(db, silent);
  });
  afterAll(async () => {
    await operator?.stop();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every bad spec: a problem naming the file and the field; no status, no row', async () => {
    const manifests = join(dir, 'manifests');
    // The references of the bad specs exist and are valid, so only the bad field can be refused.
    const valid = [
      { kind: 'ProxyUser' as const, spec: {} },
      { kind: 'AccessKey' as const, spec: { userRef: { name: 'alice' }, secretName: 'alice-laptop-key' } },
    ];
    await writeFile(
      join(manifests, 'valid.yaml'),
      [object(valid[0] as SpecCase, 'alice'), object(valid[1] as SpecCase, 'alice-laptop')]
        .map((o) => stringify(o))
        .join('---\n'),
    );
    const files = new Map<string, SpecCase>();
    for (const [index, c] of badSpecs.entries()) {
      const file = `bad-${index}.yaml`;
      files.set(file, c);
      await writeFile(join(manifests, file), stringify(object(c, `bad-${index}`)));
    }
    registryReset();
    operator = new LocalOperator({
      registry,
      manifestsDir: manifests,
      dataDir: join(dir, 'data'),
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger: silent,
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
    const report = await operator.start();
    for (const [file, c] of files) {
      const problem = report.problems.find((p) => p.startsWith(`${file} `));
      expect(problem, `${file} (${c.name}) is refused`).toBeDefined();
      expect(namesField(problem ?? '', c.field), `${problem} names ${c.field}`).toBe(true);
    }
    // Each refused resource is Stalled (InvalidSpec) with the same message, and reaches no table.
    for (const [index, c] of badSpecs.entries()) {
      const status = report.statuses.get(`${c.kind}/${namespace}/bad-${index}`);
      const stalled = status?.conditions.find((condition) => condition.type === 'Stalled');
      expect(stalled, c.name).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
      expect(namesField(stalled?.message ?? '', c.field), `${stalled?.message} names ${c.field}`).toBe(true);
    }
    for (const table of ['users', 'access_keys', 'bedrock_keys']) {
      const rows = await db.query<{ name: string }>(`SELECT name FROM ${table} WHERE name LIKE 'bad-%'`);
      expect(rows, table).toEqual([]);
    }
  });
});

describe('the local operator: a valid manifest edited into a bad one is Stalled, and keeps its key', () => {
  it('the key keeps working while the file is bad, and is the same key once the file is fixed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-admission-'));
    const db = await PgliteDatabase.open();
    await migrate(db, silent);
    const manifests = join(dir, 'manifests');
    await mkdir(manifests);
    const file = join(manifests, 'alice.yaml');
    const write = (spec: Record<string, unknown>) =>
      writeFile(
        file,
        [
          object({ kind: 'ProxyUser', spec: {} }, 'alice'),
          object(
            { kind: 'AccessKey', spec: { userRef: { name: 'alice' }, secretName: 'alice-key', ...spec } },
            'alice-laptop',
          ),
        ]
          .map((o) => stringify(o))
          .join('---\n'),
      );
    registryReset();
    const local = new LocalOperator({
      registry,
      manifestsDir: manifests,
      dataDir: join(dir, 'data'),
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger: silent,
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
    try {
      await write({});
      const first = await local.start();
      const key = first.readyKeys[0]?.baseUrl.split('/ak/')[1] ?? '';
      expect(await findKeyByHash(db, hashKey(key))).toBeDefined();
      // A typo: BedrockOnly without a model (a cross-field rule) — refused, the key untouched.
      await write({ routing: 'BedrockOnly' });
      // An edit is used once the file has not changed for the settle window (500 ms).
      await settled();
      const bad = await local.sync();
      const stalled = bad.statuses
        .get(`AccessKey/${namespace}/alice-laptop`)
        ?.conditions.find((condition) => condition.type === 'Stalled');
      expect(stalled).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
      expect(stalled?.message).toContain('spec.bedrock.model: routing BedrockOnly needs a Bedrock model');
      expect(await findKeyByHash(db, hashKey(key))).toMatchObject({ routing: 'PlanWithFailover' });
      await write({ routing: 'PlanOnly' });
      await settled();
      const fixed = await local.sync();
      expect(fixed.readyKeys.map((k) => k.baseUrl)).toEqual([first.readyKeys[0]?.baseUrl]);
      expect(await findKeyByHash(db, hashKey(key))).toMatchObject({ routing: 'PlanOnly' });
    } finally {
      await local.stop();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const registry = createMetricsRegistry({ processMetrics: false });
const registryReset = () => registry.clear();
const settled = () => new Promise((resolve) => setTimeout(resolve, 600));

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort, startThrowawayKubeApiserver, startThrowawayPostgres } from '@ccproxy/test-harness';
import { operatorNodeFlags } from './shipped-node-flags.ts';

/**
 * `npm run bench -- operator-scale [--keys N]`: the issue's scale targets for the Kubernetes
 * operator, on the real kube-apiserver + etcd (+ kube-controller-manager) of the test harness
 * and a real PostgreSQL. A leader process (`operator-leader.ts`, with the Node flags the chart gives the operator) is
 * elected and synced on an empty cluster; then N AccessKeys (10 per ProxyUser) are created as
 * fast as the API server takes them, and the clock runs from the first create until every
 * AccessKey reports Ready=True. API requests are counted by a counting wrapper around the
 * leader's KubeClient (every list, watch, patch, read, create, Event and Lease call is one
 * request); the leader's peak RSS is the kernel's VmHWM. The leader also serves the operator's
 * mutating admission webhook, registered by url (127.0.0.1) with the caBundle it sets itself, so
 * the finalizers and owner references arrive with the creates (CCPROXY_BENCH_NO_WEBHOOK=1: without
 * it, each AccessKey then costs the reconcile's metadata patch).
 */
const crdsDir = fileURLToPath(new URL('../../crds/', import.meta.url));
const leaderScript = fileURLToPath(new URL('./operator-leader.ts', import.meta.url));
const namespace = 'scale';
const group = 'ccproxy.io';
const version = 'v1alpha1';
const targets = { readySeconds: 60, requestsPerKey: 3, rssMb: 200 };
const webhookConfiguration = 'ccproxy-operator-bench';

type Counts = Record<string, number>;

export async function measureOperatorScale(keys: number): Promise<void> {
  console.log(
    `[operator-scale] ${keys} AccessKeys; starting PostgreSQL and kube-apiserver + etcd + controller-manager`,
  );
  const crdFiles: string[] = [];
  const others: string[] = [];
  for (const file of (await readdir(crdsDir)).filter((name) => name.endsWith('.yaml')))
    (/^kind: CustomResourceDefinition$/m.test(await readFile(crdsDir + file, 'utf8')) ? crdFiles : others).push(
      crdsDir + file,
    );
  const [postgres, kube] = await Promise.all([startThrowawayPostgres(), startThrowawayKubeApiserver({ crdFiles })]);
  const config = new KubeConfig();
  config.loadFromString(kube.kubeconfigYaml);
  // CCPROXY_BENCH_OPERATOR_NODE_FLAGS replaces the shipped flags, to measure what they cost.
  const override = process.env.CCPROXY_BENCH_OPERATOR_NODE_FLAGS;
  const nodeFlags = override === undefined ? operatorNodeFlags() : override.split(/\s+/).filter(Boolean);
  console.log(`[operator-scale] leader's Node flags: ${nodeFlags.join(' ') || '(none)'}`);
  const withWebhook = process.env.CCPROXY_BENCH_NO_WEBHOOK !== '1';
  const webhookPort = await freePort();
  if (withWebhook) await apply(config, webhookConfigurationOf(webhookPort));
  console.log(
    `[operator-scale] admission webhook: ${withWebhook ? `on (https://127.0.0.1:${webhookPort}/mutate)` : 'off (CCPROXY_BENCH_NO_WEBHOOK=1)'}`,
  );
  const leader = fork(leaderScript, [], {
    // --expose-gc only lets the bench ask for a full collection at the end (what the heap retains).
    execArgv: [...nodeFlags, '--expose-gc'],
    env: {
      ...process.env,
      DATABASE_URL: postgres.url,
      KUBECONFIG: kube.kubeconfigPath,
      ...(withWebhook
        ? { CCPROXY_WEBHOOK_CONFIGURATION: webhookConfiguration, CCPROXY_WEBHOOK_PORT: String(webhookPort) }
        : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = leader.pid ?? 0;
  let peakSampled = 0;
  const sampler = setInterval(
    () => void rssMb(pid, 'VmRSS').then((mb) => (peakSampled = Math.max(peakSampled, mb))),
    200,
  );
  try {
    // The admission policy too: creates pay its CEL cost as in a cluster.
    for (const file of others) for (const object of await objectsIn(file)) await apply(config, object);
    await apply(config, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await waitFor(leader, 'synced');
    // The clock starts once the API server can call the webhook (its caBundle is set).
    if (withWebhook) await caBundleSet(config);
    const idleRss = await rssMb(pid, 'VmRSS');
    const before = await countsOf(leader);
    const cpuBefore = await cpuSeconds(pid);
    const serverBefore = await serverCounts(config);
    const ready = new Set<string>();
    const allReady = Promise.withResolvers<undefined>();
    const stopWatch = await watchReady(config, ready, keys, () => allReady.resolve(undefined));
    const started = performance.now();
    const users = Math.ceil(keys / 10);
    const api = config.makeApiClient(CustomObjectsApi);
    // A loaded API server may drop a connection: a create is retried (a 409 then means it landed).
    const create = async (plural: string, body: object) => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await api.createNamespacedCustomObject({ group, version, namespace, plural, body });
        } catch (error) {
          if ((error as { code?: number }).code === 409) return undefined;
          if (attempt >= 5) throw error;
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
      }
    };
    await pool(users, 16, (i) =>
      create('proxyusers', {
        apiVersion: `${group}/${version}`,
        kind: 'ProxyUser',
        metadata: { name: `u${i}` },
        spec: {},
      }),
    );
    await pool(keys, 16, (i) =>
      create('accesskeys', {
        apiVersion: `${group}/${version}`,
        kind: 'AccessKey',
        metadata: { name: `k${i}` },
        spec: { userRef: { name: `u${i % users}` }, secretName: `k${i}-key` },
      }),
    );
    const appliedSeconds = (performance.now() - started) / 1000;
    console.log(
      `[operator-scale] applied ${users} ProxyUsers and ${keys} AccessKeys in ${appliedSeconds.toFixed(1)} s`,
    );
    const timeout = setTimeout(() => allReady.resolve(undefined), 900_000);
    await allReady.promise;
    clearTimeout(timeout);
    const readySeconds = (performance.now() - started) / 1000;
    const after = await countsOf(leader);
    const cpuUsed = (await cpuSeconds(pid)) - cpuBefore;
    stopWatch();
    // Settle: what the leader holds once the burst is over.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const settledRss = await rssMb(pid, 'VmRSS');
    const collected = waitFor(leader, 'gc');
    leader.send({ type: 'gc', path: process.env.CCPROXY_BENCH_HEAP_SNAPSHOT });
    const retained = ((await collected) as { memory: Record<string, number> }).memory;
    const peakRss = Math.max(await rssMb(pid, 'VmHWM'), peakSampled);
    const delta = deltaOf(after.counts, before.counts);
    delete delta.terms;
    const server = deltaOf(await serverCounts(config), serverBefore);
    const isLease = (label: string) => /Lease$/.test(label);
    const leaseCalls = Object.entries(delta)
      .filter(([label]) => isLease(label))
      .reduce((sum, [, n]) => sum + n, 0);
    const total = Object.values(delta).reduce((sum, n) => sum + n, 0);
    const perKey = (total - leaseCalls) / keys;
    // What each AccessKey costs by itself: its own patches, its Secret, its Events (a ProxyUser's are shared by its keys).
    const ofKeys = Object.entries(delta)
      .filter(([label]) => / AccessKey$/.test(label) || label === 'createSecret')
      .reduce((sum, [, n]) => sum + n, 0);
    const events = delta.createEvent ?? 0;
    const busy = deltaOf(after.busyMs, before.busyMs);
    const reconciles = after.reconciles.count - before.reconciles.count;
    const reconcileMs = after.reconciles.ms - before.reconciles.ms;
    const line = (met: boolean, text: string) => console.log(`[operator-scale] ${met ? 'met    ' : 'NOT MET'} ${text}`);
    console.log(`[operator-scale] results (${keys} keys, ${users} users; 2 shared cores: figures are noisy)`);
    line(
      ready.size === keys && readySeconds <= targets.readySeconds,
      `all AccessKeys Ready within ${targets.readySeconds} s of apply: ${ready.size}/${keys} Ready after ${readySeconds.toFixed(1)} s (apply itself took ${appliedSeconds.toFixed(1)} s; the last key was Ready ${(readySeconds - appliedSeconds).toFixed(1)} s after the last create)`,
    );
    line(
      perKey <= targets.requestsPerKey,
      `≤ ${targets.requestsPerKey} API requests per key on first sync: ${perKey.toFixed(2)} per key, everything the leader sent ÷ keys (${total - leaseCalls} requests for ${keys} keys and ${users} users; Lease renewals (${leaseCalls}) not counted)`,
    );
    line(
      (ofKeys + events) / keys <= targets.requestsPerKey,
      `≤ ${targets.requestsPerKey} API requests per key, counting each AccessKey's own (its metadata patch when the webhook did not write that metadata, its Secret's create, its status patches) and every Event: ${((ofKeys + events) / keys).toFixed(2)} per key (Events ${(events / keys).toFixed(2)} per key; the rest of the line above is the ProxyUsers' own requests and the watches)`,
    );
    console.log(`[operator-scale]         by method and kind (leader's client): ${JSON.stringify(delta)}`);
    console.log(
      `[operator-scale]         by verb and resource (the API server's apiserver_request_total; includes the bench's creates and the controller-manager): ${JSON.stringify(server)}`,
    );
    console.log(
      `[operator-scale]         time: the leader used ${cpuUsed.toFixed(1)} s of CPU in ${readySeconds.toFixed(0)} s; ${reconciles} reconciles, ${(reconcileMs / Math.max(1, reconciles)).toFixed(1)} ms each on average; summed waits (ms, concurrent calls overlap): ${JSON.stringify(busy)}; ${after.queries - before.queries} Postgres queries`,
    );
    line(
      peakRss <= targets.rssMb,
      `leader RSS ≤ ${targets.rssMb} MB: peak ${peakRss.toFixed(0)} MB (idle before apply ${idleRss.toFixed(0)} MB, settled after ${settledRss.toFixed(0)} MB)`,
    );
    const mb = (bytes = 0) => (bytes / 1048576).toFixed(0);
    console.log(
      `[operator-scale]         after a full GC: heap used ${mb(retained.heapUsed)} of ${mb(retained.heapTotal)} MB, external ${mb(retained.external)} MB, rss ${mb(retained.rss)} MB`,
    );
  } finally {
    clearInterval(sampler);
    leader.kill('SIGTERM');
    await Promise.race([once(leader, 'exit'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    leader.kill('SIGKILL');
    await Promise.all([kube.stop(), postgres.stop()]);
  }
}

/** The operator's MutatingWebhookConfiguration as the chart renders it, by url instead of a Service. */
function webhookConfigurationOf(port: number): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: webhookConfiguration },
    webhooks: [
      {
        name: 'metadata.ccproxy.io',
        clientConfig: { url: `https://127.0.0.1:${port}/mutate` },
        rules: [
          {
            apiGroups: [group],
            apiVersions: [version],
            operations: ['CREATE'],
            resources: ['proxyusers', 'accesskeys', 'bedrockkeys', 'teambudgets'],
          },
        ],
        failurePolicy: 'Ignore',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        timeoutSeconds: 2,
        admissionReviewVersions: ['v1'],
      },
    ],
  };
}

async function caBundleSet(config: KubeConfig): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    const text = await getText(
      config,
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfiguration}`,
    );
    const configuration = JSON.parse(text) as { webhooks?: Array<{ clientConfig?: { caBundle?: string } }> };
    if ((configuration.webhooks?.[0]?.clientConfig?.caBundle ?? '') !== '') return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the admission webhook did not set its caBundle within 60 s');
}

/** User + system CPU seconds of a process so far (/proc/PID/stat, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

async function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function waitFor(child: ReturnType<typeof fork>, type: string): Promise<Record<string, unknown>> {
  for (;;) {
    const [message] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => {
        throw new Error('the operator leader exited');
      }),
    ])) as [Record<string, unknown>];
    if (message.type === type) return message;
  }
}

interface Snapshot {
  counts: Counts;
  busyMs: Counts;
  queries: number;
  reconciles: { count: number; ms: number };
}

async function countsOf(child: ReturnType<typeof fork>): Promise<Snapshot> {
  const answer = waitFor(child, 'counts');
  child.send({ type: 'counts' });
  const snapshot = (await answer) as unknown as Snapshot & { memory: Record<string, number> };
  const { memory } = snapshot;
  const mb = (bytes = 0) => (bytes / 1048576).toFixed(0);
  console.log(
    `[operator-scale] leader memory: rss ${mb(memory.rss)} MB, heap used ${mb(memory.heapUsed)} of ${mb(memory.heapTotal)} MB, external ${mb(memory.external)} MB`,
  );
  return snapshot;
}

function deltaOf(after: Counts, before: Counts): Counts {
  const delta: Counts = {};
  for (const [label, count] of Object.entries(after)) {
    const d = count - (before[label] ?? 0);
    if (d > 0) delta[label] = Math.round(d);
  }
  return delta;
}

/**
 * The API server's own count of requests (`apiserver_request_total`), by verb, resource and
 * subresource, for the resources the operator touches: an account independent of the leader's
 * wrapper (it also counts the bench's own creates and the controller-manager's requests).
 */
async function serverCounts(config: KubeConfig): Promise<Counts> {
  const text = await getText(config, '/metrics');
  const counts: Counts = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1] ?? '', match[2] ?? '']),
    );
    if (!['accesskeys', 'proxyusers', 'secrets', 'events'].includes(labels.resource ?? '')) continue;
    const label = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts[label] = (counts[label] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

async function getText(config: KubeConfig, path: string): Promise<string> {
  const requestOptions: RequestOptions = { method: 'GET' };
  await config.applyToHTTPSOptions(requestOptions);
  const url = new URL(path, config.getCurrentCluster()?.server);
  return new Promise<string>((resolve, reject) => {
    const request = httpsRequest(url, requestOptions, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Follows the namespace's AccessKeys (the bench's own watch, not counted) until `keys` are Ready. */
async function watchReady(config: KubeConfig, ready: Set<string>, keys: number, done: () => void): Promise<() => void> {
  let stopped = false;
  let controller: AbortController | undefined;
  const start = async (): Promise<void> => {
    controller = await new Watch(config).watch(
      `/apis/${group}/${version}/namespaces/${namespace}/accesskeys`,
      {},
      (
        _type: string,
        object: { metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } },
      ) => {
        const isReady = object.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
        if (isReady) ready.add(object.metadata.name);
        if (ready.size >= keys) done();
      },
      // A watch ends every few minutes: watch again (events seen twice are idempotent here).
      () => void (stopped ? undefined : start()),
    );
  };
  await start();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

async function pool(count: number, width: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function objectsIn(file: string): Promise<Array<Record<string, unknown>>> {
  return parseAllDocuments(await readFile(file, 'utf8'))
    .map((doc) => doc.toJS() as Record<string, unknown> | null)
    .filter((object) => object !== null);
}

/** Server-side apply of one object (raw JSON: the typed serializer would drop CRD fields). */
async function apply(config: KubeConfig, object: Record<string, unknown>): Promise<void> {
  const {
    apiVersion = 'v1',
    kind = '',
    metadata,
  } = object as {
    apiVersion?: string;
    kind?: string;
    metadata: { name: string; namespace?: string };
  };
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const lower = kind.toLowerCase();
  const plural = lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : `${lower}s`;
  const path = `${base}${metadata.namespace === undefined ? '' : `/namespaces/${metadata.namespace}`}/${plural}/${metadata.name}`;
  const requestOptions: RequestOptions = {
    method: 'PATCH',
    headers: { 'content-type': 'application/apply-patch+yaml' },
  };
  await config.applyToHTTPSOptions(requestOptions);
  const url = new URL(`${path}?fieldManager=ccproxy-bench&force=true`, config.getCurrentCluster()?.server);
  await new Promise<void>((resolve, reject) => {
    const request = httpsRequest(url, requestOptions, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        (response.statusCode ?? 0) < 300
          ? resolve()
          : reject(
              new Error(`apply ${kind}/${metadata.name}: ${response.statusCode} ${Buffer.concat(chunks).toString()}`),
            ),
      );
    });
    request.on('error', reject);
    request.end(JSON.stringify(object));
  });
}

import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseResource } from '@ccproxy/operator';
import { adminConfig, ensureNamespace, installCrds, kubeRequest } from './kube-fixture.ts';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Found {
  file: string;
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } };
}

async function manifests(dir: string): Promise<Found[]> {
  const found: Found[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    for (const doc of parseAllDocuments(await readFile(path, 'utf8'))) {
      const object = doc.toJS() as Found['object'] | null;
      if (object?.kind !== undefined) found.push({ file: relative(examples, path), object });
    }
  }
  return found;
}

/** The example manifests users copy (local, Kubernetes, GitOps) are valid, and the API server takes them. */
describe('examples/', () => {
  const admin = adminConfig();
  let all: Found[];
  beforeAll(async () => {
    await installCrds(admin);
    all = await manifests(examples);
  });

  it('holds valid ccproxy resources in every layout', () => {
    const ours = all.filter((f) => f.object.apiVersion === 'ccproxy.io/v1alpha1');
    expect(new Set(ours.map((f) => f.file.split('/')[0]))).toEqual(
      new Set(['local', 'kubernetes', 'gitops', 'bedrock-key.example.yaml']),
    );
    for (const { file, object } of ours)
      expect(parseResource(object), `${file}: ${object.kind}/${object.metadata?.name}`).toHaveProperty('resource');
    // kustomization.yaml files are build instructions, not objects: they have no name.
    for (const { file, object } of all.filter((f) => !f.object.apiVersion?.startsWith('kustomize.config.k8s.io/'))) {
      expect(object.metadata?.name, `${file}: ${object.kind} has a name`).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('are accepted by the real API server (server-side dry-run)', async () => {
    const namespaces = new Set(
      all
        .map((f) => f.object.metadata?.namespace)
        .filter((ns): ns is string => ns !== undefined && !ns.includes('system') && ns !== 'argocd'),
    );
    for (const namespace of namespaces) await ensureNamespace(admin, namespace);
    const applicable = all.filter((f) => ['ccproxy.io/v1alpha1', 'v1'].includes(f.object.apiVersion ?? ''));
    expect(applicable.length).toBeGreaterThan(8);
    for (const { file, object } of applicable) {
      const { namespace, name } = object.metadata ?? {};
      const plural = {
        ProxyUser: 'proxyusers',
        AccessKey: 'accesskeys',
        BedrockKey: 'bedrockkeys',
        Secret: 'secrets',
        Namespace: 'namespaces',
      }[object.kind ?? ''];
      const base = object.apiVersion === 'v1' ? '/api/v1' : '/apis/ccproxy.io/v1alpha1';
      const path =
        object.kind === 'Namespace'
          ? `${base}/namespaces/${name}`
          : `${base}/namespaces/${namespace}/${plural}/${name}`;
      const response = await kubeRequest(
        admin,
        'PATCH',
        `${path}?dryRun=All&fieldManager=examples-test&fieldValidation=Strict`,
        JSON.stringify(object),
        'application/apply-patch+yaml',
      );
      expect(response.status, `${file}: ${object.kind}/${name}: ${response.body}`).toBeLessThan(300);
    }
  });
});

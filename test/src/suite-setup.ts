import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startThrowawayKubeApiserver } from './kube-apiserver.ts';
import { startMotoServer } from './moto-server.ts';
import { startThrowawayPostgres } from './throwaway-postgres.ts';

/** The static token of the identity the operator runs as in tests (bound to the operator's RBAC rules). */
export const operatorToken = 'ccproxy-operator-test-token-0123456789';
/** The static token of the identity the admin facade runs as in tests (bound to the admin's RBAC rules). */
export const facadeToken = 'ccproxy-admin-facade-test-token-0123456789';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the run's throwaway PostgreSQL cluster. */
    postgresUrl: string;
    /** Admin kubeconfig (YAML) of the run's kube-apiserver. */
    kubeconfig: string;
    /** Kubeconfig of the `ccproxy-operator` identity, which has only the RBAC the tests bind to it. */
    operatorKubeconfig: string;
    /** Kubeconfig of the `ccproxy-admin` identity (the admin facade), which has only the RBAC the tests bind to it. */
    facadeKubeconfig: string;
    /** moto in server mode (AWS KMS, CloudWatch) on loopback. */
    motoUrl: string;
  }
}

/**
 * One real PostgreSQL cluster, one kube-apiserver + etcd and one moto server for the whole run,
 * started side by side; test files create their own databases, namespaces and KMS keys.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The product's CRDs go in before the controller-manager starts, so its garbage collector
  // follows their ownerReferences from the first test on (test files apply them again, unchanged).
  const crdsDir = fileURLToPath(new URL('../../crds/', import.meta.url));
  // Only the CustomResourceDefinitions: the folder also holds the admission policy, which the
  // operator's test fixture applies itself.
  const crdFiles: string[] = [];
  for (const file of (await readdir(crdsDir)).filter((name) => name.endsWith('.yaml')))
    if (/^kind: CustomResourceDefinition$/m.test(await readFile(crdsDir + file, 'utf8'))) crdFiles.push(crdsDir + file);
  const [postgres, kube, moto] = await Promise.all([
    startThrowawayPostgres(),
    startThrowawayKubeApiserver({
      extraUsers: [
        { token: operatorToken, user: 'ccproxy-operator' },
        { token: facadeToken, user: 'ccproxy-admin' },
      ],
      crdFiles,
    }),
    startMotoServer(),
  ]);
  project.provide('postgresUrl', postgres.url);
  project.provide('kubeconfig', kube.kubeconfigYaml);
  project.provide('operatorKubeconfig', kube.kubeconfigFor(operatorToken));
  project.provide('facadeKubeconfig', kube.kubeconfigFor(facadeToken));
  project.provide('motoUrl', moto.url);
  return async () => {
    await Promise.all([postgres.stop(), kube.stop(), moto.stop()]);
  };
}

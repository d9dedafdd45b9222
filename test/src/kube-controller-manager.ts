import type { ChildProcess } from 'node:child_process';
import { spawnDaemon, type Daemon } from './daemon.ts';

/**
 * The controllers the tests need, and no more: the garbage collector (ownerReferences: a deleted
 * ProxyUser takes its AccessKeys, a deleted AccessKey its generated Secret) and the namespace
 * controller (a deleted namespace is emptied and goes away). No kubelet, so nothing that runs pods.
 */
export const controllers = ['garbagecollector', 'namespace'] as const;

/**
 * Starts kube-controller-manager (built from the same module and version as kube-apiserver)
 * against the API server of `kubeconfigPath`, and resolves once its garbage collector has synced
 * the informers of every kind it discovered — from then on an owner's deletion is acted on.
 */
export async function startKubeControllerManager(
  bin: string,
  kubeconfigPath: string,
  children: Set<ChildProcess>,
  timeoutMs: number,
): Promise<Daemon> {
  const args = [
    `--kubeconfig=${kubeconfigPath}`,
    `--controllers=${controllers.join(',')}`,
    // One instance per API server: nothing to elect, and no Lease to wait for after a restart.
    '--leader-elect=false',
    // Every controller acts as the kubeconfig's identity (no per-controller ServiceAccounts to mint).
    '--use-service-account-credentials=false',
    // No serving port: nothing reads its metrics, and no port to allocate.
    '--secure-port=0',
    // The garbage collector's own default is 20 workers; a deletion in a test never queues behind more.
    '--concurrent-gc-syncs=5',
  ];
  const daemon = spawnDaemon(bin, args, children);
  const synced = daemon.printed(/Garbage collector: (all resource monitors have synced|not all resource monitors)/);
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, timeoutMs, 'timeout').unref());
  const outcome = await Promise.race([synced, timeout]);
  if (outcome === true) return daemon;
  await daemon.terminate();
  const what = outcome === 'timeout' ? `had not synced its garbage collector within ${timeoutMs} ms` : 'exited';
  throw new Error(`kube-controller-manager ${what}:\n${daemon.tail()}`);
}

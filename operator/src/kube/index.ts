// The Kubernetes half of the operator, apart from the package root: it is what loads
// @kubernetes/client-node, which `ccproxy proxy` and `ccproxy local` never need.
export { KubeClient, loadKubeConfig, type KubeObject, type Watched } from './kube-client.ts';
export { KubeOperator, finalizer, type KubeOperatorOptions } from './kube-operator.ts';
export { LeaderElector, type LeaderElectionOptions, type LeaderClock } from './leader-election.ts';
export { Reflector, type ReflectorOptions } from './reflector.ts';
export { WorkQueue, type WorkQueueOptions } from './work-queue.ts';
export { toKubeStatus, statusChanged, firstSightStatus, type KubeStatus, type KubeCondition } from './kube-status.ts';
export { generatedSecretLabels } from './kube-secret-store.ts';
export { buildOperatorApp } from './operator-app.ts';

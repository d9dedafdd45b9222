// The Kubernetes half of the operator, apart from the package root (`ccproxy proxy` and
// `ccproxy local` never need it). It does not load @kubernetes/client-node unless a kubeconfig
// needs it (kube-connection.ts): the operator and `ccproxy admin` alike.
export { KubeClient, type KubeObject, type Watched } from './kube-client.ts';
export { KubeApiError, wholeBody } from './kube-wire.ts';
export { loadKubeConnection, connectionFromKubeConfig, type KubeConnection } from './kube-connection.ts';
export { KubeOperator, finalizer, type KubeOperatorOptions } from './kube-operator.ts';
export { LeaderElector, type LeaderElectionOptions, type LeaderClock } from './leader-election.ts';
export { Reflector, type ReflectorOptions } from './reflector.ts';
export { WorkQueue, type WorkQueueOptions } from './work-queue.ts';
export { toKubeStatus, statusChanged, firstSightStatus, type KubeStatus, type KubeCondition } from './kube-status.ts';
export { generatedSecretLabels } from './kube-secret-store.ts';
export { buildOperatorApp } from './operator-app.ts';
export { AdmissionWebhook, type AdmissionWebhookOptions } from './webhook/admission-webhook.ts';
export { answerReview } from './webhook/mutate.ts';
export { ensureServingSecret, generateServingCert, webhookTlsLabels } from './webhook/serving-cert.ts';

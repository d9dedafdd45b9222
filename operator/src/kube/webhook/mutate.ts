import { kindOrder, type Kind } from '../../kinds.ts';
import { group } from '../../resources.ts';
import type { OwnerReference } from '../kube-client.ts';
import { finalizer } from '../kube-operator.ts';
import { ownerBindingOf, type LiveUser } from '../user-binding.ts';

/** One RFC 6902 operation, as the API server applies a webhook's `JSONPatch`. */
export interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** The answer to one AdmissionReview: the review to send back, or why the request is malformed (a 400). */
export type ReviewAnswer = { review: AdmissionReviewResponse } | { error: string };

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: { uid: string; allowed: true; patchType?: 'JSONPatch'; patch?: string };
}

interface ObjectMetadata {
  namespace?: string;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  annotations?: Record<string, string>;
}

/**
 * The mutating admission webhook's decision, with no I/O: on CREATE of one of the kinds, the
 * metadata the leader's reconcile would otherwise patch right after — the finalizer, and for an
 * AccessKey whose ProxyUser `ownerOf` knows (and is not terminating) the owner reference and the
 * user-uid annotation, by the very rule the reconcile uses (`ownerBindingOf`). It never refuses
 * (`allowed: true` always; validation is the CRDs' and the admission policy's): at worst it adds
 * less, and the reconcile patches what is missing.
 */
export function answerReview(
  body: unknown,
  ownerOf: (kind: Kind, namespace: string, name: string) => LiveUser | undefined,
): ReviewAnswer {
  if (typeof body !== 'object' || body === null) return { error: 'the body is not an AdmissionReview object' };
  const { apiVersion, kind, request } = body as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (apiVersion !== 'admission.k8s.io/v1' || kind !== 'AdmissionReview')
    return { error: 'expected apiVersion admission.k8s.io/v1, kind AdmissionReview' };
  if (typeof request !== 'object' || request === null) return { error: 'the AdmissionReview has no request' };
  const r = request as { uid?: unknown; kind?: unknown; operation?: unknown; namespace?: unknown; object?: unknown };
  if (typeof r.uid !== 'string' || r.uid === '') return { error: 'the AdmissionReview request has no uid' };
  const allowed = (patch: PatchOperation[]): ReviewAnswer => ({
    review: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: r.uid as string,
        allowed: true,
        ...(patch.length === 0
          ? {}
          : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
      },
    },
  });
  const resourceKind = r.kind as { group?: unknown; kind?: unknown } | undefined;
  const ours = kindOrder.find((k) => k === resourceKind?.kind);
  // Anything else (an update, a kind this webhook is not registered for) passes unchanged.
  if (r.operation !== 'CREATE' || resourceKind?.group !== group || ours === undefined) return allowed([]);
  if (typeof r.object !== 'object' || r.object === null) return { error: 'a CREATE review without an object' };
  const object = r.object as { metadata?: unknown; spec?: unknown };
  if (object.metadata !== undefined && (typeof object.metadata !== 'object' || object.metadata === null))
    return { error: 'the object has malformed metadata' };
  const malformed = malformedMetadata(object.metadata ?? {});
  if (malformed !== undefined) return { error: `the object's metadata.${malformed}` };
  const metadata = (object.metadata ?? {}) as ObjectMetadata;
  const namespace = typeof r.namespace === 'string' ? r.namespace : (metadata.namespace ?? '');
  const patch = metadataPatch(ours, metadata, object.spec, namespace, ownerOf);
  // The API server always sends metadata (a name at least); a paths' parent must exist all the same.
  if (object.metadata === undefined && patch.length > 0) patch.unshift({ op: 'add', path: '/metadata', value: {} });
  return allowed(patch);
}

function metadataPatch(
  kind: Kind,
  metadata: ObjectMetadata,
  spec: unknown,
  namespace: string,
  ownerOf: (kind: Kind, namespace: string, name: string) => LiveUser | undefined,
): PatchOperation[] {
  const patch: PatchOperation[] = [];
  const finalizers = Array.isArray(metadata.finalizers) ? metadata.finalizers : [];
  if (!finalizers.includes(finalizer))
    patch.push({ op: 'add', path: '/metadata/finalizers', value: [...finalizers, finalizer] });
  const decision = ownerBindingOf(kind, { metadata, spec }, namespace, ownerOf);
  if (decision?.action === 'bind') {
    patch.push({ op: 'add', path: '/metadata/ownerReferences', value: decision.ownerReferences });
    patch.push({
      op: 'add',
      path: '/metadata/annotations',
      value: { ...(metadata.annotations ?? {}), ...decision.annotations },
    });
  }
  return patch;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown): value is string => typeof value === 'string';

/**
 * What the API server would never send (it decodes metadata before admission) but a caller of
 * this endpoint can: named, so the answer is a 400 rather than a crash or a patch built on it.
 */
function malformedMetadata(metadata: object): string | undefined {
  const { finalizers, ownerReferences, annotations } = metadata as Record<string, unknown>;
  if (finalizers !== undefined && !(Array.isArray(finalizers) && finalizers.every(isString)))
    return 'finalizers is not a list of strings';
  if (
    ownerReferences !== undefined &&
    !(
      Array.isArray(ownerReferences) &&
      ownerReferences.every((r) => isRecord(r) && [r.apiVersion, r.kind, r.name, r.uid].every(isString))
    )
  )
    return 'ownerReferences is not a list of references (apiVersion, kind, name, uid)';
  if (annotations !== undefined && !(isRecord(annotations) && Object.values(annotations).every(isString)))
    return 'annotations is not a map of strings';
  return undefined;
}

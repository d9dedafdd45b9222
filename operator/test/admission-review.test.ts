import { describe, expect, it } from 'vitest';
import { answerReview, finalizer } from '@ccproxy/operator/kube';

const group = 'ccproxy.io';
const version = 'v1alpha1';

/** The decision alone (no API server): what is kept of the object's own metadata, what passes unchanged. */
describe('answerReview', () => {
  const user = { uid: 'u-1', terminating: false };
  const ownerOf = (kind: string, namespace: string, name: string) =>
    kind === 'ProxyUser' && namespace === 'team' && name === 'ann' ? user : undefined;
  const reviewOf = (kind: string, object: unknown, operation = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'r', kind: { group, version, kind }, operation, namespace: 'team', object },
  });
  const patchOf = (body: unknown): unknown => {
    const answer = answerReview(body, ownerOf);
    if ('error' in answer) throw new Error(answer.error);
    expect(answer.review.response).toMatchObject({ uid: 'r', allowed: true });
    const { patch } = answer.review.response;
    return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString()) as unknown);
  };

  it("keeps the object's own finalizers, owner references and annotations", () => {
    const other = { apiVersion: 'example.com/v1', kind: 'Thing', name: 't', uid: 't-1' };
    expect(
      patchOf(
        reviewOf('AccessKey', {
          metadata: { name: 'k', finalizers: ['example.com/keep'], ownerReferences: [other], annotations: { a: 'b' } },
          spec: { userRef: { name: 'ann' } },
        }),
      ),
    ).toEqual([
      { op: 'add', path: '/metadata/finalizers', value: ['example.com/keep', finalizer] },
      {
        op: 'add',
        path: '/metadata/ownerReferences',
        value: [
          other,
          { apiVersion: `${group}/${version}`, kind: 'ProxyUser', name: 'ann', uid: 'u-1', blockOwnerDeletion: true },
        ],
      },
      { op: 'add', path: '/metadata/annotations', value: { a: 'b', 'ccproxy.io/user-uid': 'u-1' } },
    ]);
  });

  it('adds nothing already there, and passes updates and other kinds unchanged', () => {
    const bound = {
      metadata: {
        name: 'k',
        finalizers: [finalizer],
        ownerReferences: [{ apiVersion: `${group}/${version}`, kind: 'ProxyUser', name: 'ann', uid: 'u-1' }],
      },
      spec: { userRef: { name: 'ann' } },
    };
    expect(patchOf(reviewOf('AccessKey', bound))).toEqual([]);
    expect(patchOf(reviewOf('AccessKey', { metadata: { name: 'k' } }, 'UPDATE'))).toEqual([]);
    expect(patchOf(reviewOf('Secret', { metadata: { name: 's' } }))).toEqual([]);
    // A user it does not know (yet): the finalizer only; the reconcile binds later.
    expect(patchOf(reviewOf('AccessKey', { metadata: { name: 'k' }, spec: { userRef: { name: 'bob' } } }))).toEqual([
      { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
    ]);
    expect(patchOf(reviewOf('TeamBudget', { metadata: { name: 'b' }, spec: {} }))).toEqual([
      { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
    ]);
  });

  it.each([
    ['ownerReferences a string', { ownerReferences: 'x' }, 'ownerReferences'],
    ['ownerReferences an object', { ownerReferences: { a: 1 } }, 'ownerReferences'],
    ['an ownerReference null', { ownerReferences: [null] }, 'ownerReferences'],
    [
      'an ownerReference without apiVersion',
      { ownerReferences: [{ kind: 'ProxyUser', name: 'a', uid: 'u' }] },
      'ownerReferences',
    ],
    ['finalizers a string', { finalizers: 'abc' }, 'finalizers'],
    ['a finalizer a number', { finalizers: [1] }, 'finalizers'],
    ['annotations a list', { annotations: ['a', 'b'] }, 'annotations'],
    ['annotations a string', { annotations: 'zz' }, 'annotations'],
    ['an annotation a number', { annotations: { a: 1 } }, 'annotations'],
  ])('refuses metadata with %s (a 400 naming it, not a crash or a patch built on it)', (_what, metadata, field) => {
    const answer = answerReview(
      reviewOf('AccessKey', { metadata: { name: 'k', ...metadata }, spec: { userRef: { name: 'ann' } } }),
      ownerOf,
    );
    expect(answer).toEqual({ error: expect.stringContaining(`metadata.${field}`) });
  });
});

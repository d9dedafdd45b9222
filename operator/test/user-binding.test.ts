import { describe, expect, it } from 'vitest';
import { userBinding, userUidAnnotation } from '../src/kube/user-binding.ts';

const ownerRef = (uid: string) => ({ apiVersion: 'ccproxy.io/v1alpha1', kind: 'ProxyUser', name: 'ann', uid });
const live = (uid: string, terminating = false) => ({ uid, terminating });

/** The AccessKey → ProxyUser binding policy, every case, without an API server or Postgres. */
describe('userBinding', () => {
  it.each([
    ['unbound, user live: bind (owner reference with blockOwnerDeletion, uid annotation)', {}, live('u1'), 'bind u1'],
    ['unbound, no user: wait, never bind', {}, undefined, 'reconcile gone=true uid=-'],
    ['unbound, user terminating: wait, never bind to a dying user', {}, live('u1', true), 'reconcile gone=true uid=-'],
    [
      'bound, same user: served',
      { ownerReferences: [ownerRef('u1')] },
      live('u1'),
      'reconcile gone=false uid=u1 collected',
    ],
    ['bound, user gone', { ownerReferences: [ownerRef('u1')] }, undefined, 'reconcile gone=true uid=u1 collected'],
    [
      'bound, user terminating',
      { ownerReferences: [ownerRef('u1')] },
      live('u1', true),
      'reconcile gone=true uid=u1 collected',
    ],
    [
      'bound, user re-created (another uid)',
      { ownerReferences: [ownerRef('u1')] },
      live('u2'),
      'reconcile gone=true uid=u1 collected',
    ],
    [
      'orphaned (owner reference stripped), annotation kept, user re-created',
      { annotations: { [userUidAnnotation]: 'u1' } },
      live('u2'),
      'reconcile gone=true uid=u1',
    ],
    [
      'an owner reference of another group is not a ProxyUser binding',
      { ownerReferences: [{ ...ownerRef('x'), apiVersion: 'example.com/v1' }] },
      live('u1'),
      'bind u1',
    ],
  ] as const)('%s', (_, metadata, user, expected) => {
    const decision = userBinding(metadata, 'ann', user);
    const summary =
      decision.action === 'bind'
        ? `bind ${decision.userUid}`
        : `reconcile gone=${decision.binding.userGone === true} uid=${decision.binding.userUid ?? '-'}${decision.binding.collected === true ? ' collected' : ''}`;
    expect(summary).toBe(expected);
    if (decision.action === 'bind') {
      expect(decision.ownerReferences.at(-1)).toEqual({ ...ownerRef('u1'), blockOwnerDeletion: true });
      expect(decision.annotations).toEqual({ [userUidAnnotation]: 'u1' });
    }
  });
});

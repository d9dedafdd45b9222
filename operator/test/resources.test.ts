import { describe, expect, it } from 'vitest';
import { parseResource } from '@ccproxy/operator';

/** The schemas carry descriptions for the CRDs; decorating them must not cost their defaults. */
describe('resource schemas', () => {
  it('fill every default of a minimal spec, for every kind', () => {
    const parsed = (kind: string, spec: object) =>
      parseResource({ apiVersion: 'ccproxy.io/v1alpha1', kind, metadata: { name: 'a', namespace: 'n' }, spec });
    expect(parsed('ProxyUser', {})).toEqual({
      resource: expect.objectContaining({ spec: { displayName: '', description: '', suspended: false } }),
    });
    expect(parsed('AccessKey', { userRef: { name: 'u' }, secretName: 's', bedrock: {} })).toEqual({
      resource: expect.objectContaining({
        spec: {
          userRef: { name: 'u' },
          secretName: 's',
          routing: 'PlanWithFailover',
          revoked: false,
          // No default for api: unset lets the BedrockKey's spec.api (then InvokeModel) decide.
          bedrock: { modelMap: {} },
        },
      }),
    });
    expect(parsed('BedrockKey', { accessKeyRef: { name: 'k' }, secretRef: { name: 's' } })).toEqual({
      resource: expect.objectContaining({
        spec: { accessKeyRef: { name: 'k' }, auth: 'ApiKey', secretRef: { name: 's', key: 'apiKey' } },
      }),
    });
  });

  it('refuse what they describe: a display name with a control character names the field', () => {
    const result = parseResource({
      apiVersion: 'ccproxy.io/v1alpha1',
      kind: 'ProxyUser',
      metadata: { name: 'a' },
      spec: { displayName: 'Ali\u0000ce' },
    });
    expect(result).toEqual({ problems: [expect.stringContaining('/spec/displayName')] });
  });

  it('a BedrockKey has a secretRef exactly when it authenticates with an API key', () => {
    const parsed = (spec: object) =>
      parseResource({
        apiVersion: 'ccproxy.io/v1alpha1',
        kind: 'BedrockKey',
        metadata: { name: 'b', namespace: 'n' },
        spec: { accessKeyRef: { name: 'k' }, ...spec },
      });
    const refused = {
      problems: ['/spec: secretRef is required with auth ApiKey and not allowed with auth AwsIdentity'],
    };
    expect(parsed({ auth: 'AwsIdentity' })).toEqual({
      resource: expect.objectContaining({ spec: { accessKeyRef: { name: 'k' }, auth: 'AwsIdentity' } }),
    });
    expect(parsed({ auth: 'AwsIdentity', secretRef: { name: 's' } }), 'a Secret that would be ignored').toEqual(
      refused,
    );
    expect(parsed({}), 'ApiKey by default, with nothing to read it from').toEqual(refused);
    expect(parsed({ auth: 'ApiKey' })).toEqual(refused);
    expect(parsed({ auth: 'Iam', secretRef: { name: 's' } })).toEqual({
      problems: expect.arrayContaining([expect.stringContaining('/spec/auth')]) as unknown,
    });
  });
});

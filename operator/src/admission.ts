import { group, version, type AccessKey } from './resources.ts';

/**
 * Cross-field rules: what one field of a spec may be given another. Each rule lives here ONCE,
 * as the CEL expression the API server evaluates (the ValidatingAdmissionPolicy rendered below,
 * shipped beside the CRDs) and as its JS twin, which `parseResource` applies where no API server
 * is (the local operator's manifests folder, the admin facade's stores, the Kubernetes operator
 * when the policy is not installed). The message names the field, and is the same on both
 * paths; operator/test/admission.test.ts checks that the CEL and the JS agree, case by case, on
 * a real API server. Single-field rules (patterns, lengths, enums) are in the schemas.
 */
export interface CrossFieldRule<Spec> {
  kind: string;
  /** The field the message names (what to change). */
  field: string;
  /** CEL over the policy's `object`; true when the rule holds. */
  expression: string;
  message: string;
  /** The JS twin of `expression`, on a spec with its defaults filled in. */
  holds(spec: Spec): boolean;
}

type AccessKeySpec = AccessKey['spec'];
type Bedrock = NonNullable<AccessKeySpec['bedrock']>;

/** An ARN names its region in its fourth field: `arn:aws:bedrock:<region>:…`. */
const arnInRegion = (model: string, region: string) =>
  !model.startsWith('arn:') || model.includes(`:bedrock:${region}:`);
const withRegion = (spec: AccessKeySpec, check: (bedrock: Bedrock, region: string) => boolean) =>
  spec.bedrock?.region === undefined || check(spec.bedrock, spec.bedrock.region);
const b = 'object.spec.bedrock';

export const crossFieldRules: ReadonlyArray<CrossFieldRule<AccessKeySpec>> = [
  {
    kind: 'AccessKey',
    field: 'spec.bedrock.model',
    expression:
      `!has(object.spec.routing) || object.spec.routing != 'BedrockOnly' || ` +
      `(has(${b}) && (has(${b}.model) || (has(${b}.modelMap) && size(${b}.modelMap) > 0)))`,
    message:
      'spec.bedrock.model: routing BedrockOnly needs a Bedrock model (spec.bedrock.model, or an entry in spec.bedrock.modelMap)',
    holds: (spec) =>
      spec.routing !== 'BedrockOnly' ||
      (spec.bedrock !== undefined &&
        (spec.bedrock.model !== undefined || Object.keys(spec.bedrock.modelMap).length > 0)),
  },
  {
    kind: 'AccessKey',
    field: 'spec.bedrock.model',
    expression:
      `!has(${b}) || !has(${b}.region) || !has(${b}.model) || ` +
      `!${b}.model.startsWith('arn:') || ${b}.model.contains(':bedrock:' + ${b}.region + ':')`,
    message: 'spec.bedrock.model: a Bedrock ARN must be in spec.bedrock.region (arn:aws:bedrock:<region>:…)',
    holds: (spec) =>
      withRegion(spec, (bedrock, region) => bedrock.model === undefined || arnInRegion(bedrock.model, region)),
  },
  {
    kind: 'AccessKey',
    field: 'spec.bedrock.modelMap',
    expression:
      `!has(${b}) || !has(${b}.region) || !has(${b}.modelMap) || ${b}.modelMap.all(k, ` +
      `!${b}.modelMap[k].startsWith('arn:') || ${b}.modelMap[k].contains(':bedrock:' + ${b}.region + ':'))`,
    message: 'spec.bedrock.modelMap: every Bedrock ARN must be in spec.bedrock.region (arn:aws:bedrock:<region>:…)',
    holds: (spec) =>
      withRegion(spec, (bedrock, region) => Object.values(bedrock.modelMap).every((m) => arnInRegion(m, region))),
  },
];

/** The messages of every cross-field rule `spec` of `kind` breaks (defaults filled in). */
export function crossFieldProblems(kind: string, spec: unknown): string[] {
  return crossFieldRules
    .filter((rule) => rule.kind === kind && !rule.holds(spec as AccessKeySpec))
    .map((rule) => rule.message);
}

/** A literal: resources.ts imports this module, so its constants are not yet there at load time. */
export const admissionPolicyName = 'cross-field.ccproxy.io';
const plurals: Record<string, string> = { ProxyUser: 'proxyusers', AccessKey: 'accesskeys', BedrockKey: 'bedrockkeys' };

/**
 * The ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+) and its
 * cluster-wide binding that make the API server refuse what `crossFieldRules` refuse. Only spec
 * writes are judged (a create, or an update that changes the spec): status writes, finalizer
 * removals and label edits of an object stored before a rule existed still go through, as CRD
 * validation ratcheting does for single fields.
 */
export function admissionPolicy(): Array<Record<string, unknown>> {
  const kinds = [...new Set(crossFieldRules.map((rule) => rule.kind))];
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: admissionPolicyName },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [group],
              apiVersions: [version],
              operations: ['CREATE', 'UPDATE'],
              resources: kinds.map((kind) => plurals[kind]),
            },
          ],
        },
        matchConditions: [
          { name: 'spec-written', expression: "request.operation == 'CREATE' || object.spec != oldObject.spec" },
        ],
        validations: crossFieldRules.map((rule) => ({
          expression: rule.expression,
          message: rule.message,
          reason: 'Invalid',
        })),
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: admissionPolicyName },
      spec: { policyName: admissionPolicyName, validationActions: ['Deny'] },
    },
  ];
}

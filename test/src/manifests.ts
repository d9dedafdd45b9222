/** Builders for the resource YAML tests put in a manifests folder (the shapes `kubectl apply` takes). */

export function proxyUser(namespace: string, name: string, spec = '{}'): string {
  return `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: ${spec}\n`;
}

export function accessKey(
  namespace: string,
  name: string,
  options: {
    user: string;
    secretName?: string;
    routing?: string;
    revoked?: boolean;
    bedrockModel?: string;
    /** `spec.bedrock.api` (absent: the default, InvokeModel). */
    bedrockApi?: 'Converse' | 'InvokeModel';
  },
): string {
  const fields = [
    `userRef: { name: ${options.user} }`,
    `secretName: ${options.secretName ?? name}`,
    ...(options.routing === undefined ? [] : [`routing: ${options.routing}`]),
    ...(options.revoked === undefined ? [] : [`revoked: ${options.revoked}`]),
    ...(options.bedrockModel === undefined
      ? []
      : [
          `bedrock: { region: us-east-1, ${options.bedrockApi === undefined ? '' : `api: ${options.bedrockApi}, `}model: ${options.bedrockModel} }`,
        ]),
  ];
  return `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { ${fields.join(', ')} }\n`;
}

export function secret(namespace: string, name: string, data: Record<string, string>): string {
  const entries = Object.entries(data)
    .map(([key, value]) => `${key}: ${value}`)
    .join(', ');
  return `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${namespace} }\nstringData: { ${entries} }\n`;
}

export function bedrockKey(
  namespace: string,
  name: string,
  options: { accessKey: string; secretName: string; secretKey?: string } | { accessKey: string; auth: 'AwsIdentity' },
): string {
  const how =
    'auth' in options
      ? `auth: ${options.auth}`
      : `secretRef: { name: ${options.secretName}, key: ${options.secretKey ?? 'apiKey'} }`;
  return `apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { accessKeyRef: { name: ${options.accessKey} }, ${how} }\n`;
}

/** Several documents as one multi-document YAML file. */
export function documents(...docs: string[]): string {
  return docs.join('---\n');
}

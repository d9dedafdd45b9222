/**
 * `anthropic-beta` values Bedrock accepts (in `additionalModelRequestFields.anthropic_beta`);
 * any other value makes Bedrock reject the whole request. Provenance: the list Envoy AI Gateway
 * keeps from live probes against Bedrock InvokeModel (internal/translator/anthropic_awsanthropic.go;
 * docs/architecture.md, "Bedrock mapping"). Extend only with flags verified against Bedrock.
 */
export const acceptedBetas: ReadonlySet<string> = new Set([
  'computer-use-2024-10-22',
  'computer-use-2025-01-24',
  'context-1m-2025-08-07',
  'fine-grained-tool-streaming-2025-05-14',
  'interleaved-thinking-2025-05-14',
  'output-128k-2025-02-19',
  'token-efficient-tools-2025-02-19',
  // The target of the alias below: without it here, the renamed flag was dropped after all.
  'tool-search-tool-2025-10-19',
]);

/** Renamed flags Bedrock knows under another name (same provenance). */
export const betaAliases: ReadonlyMap<string, string> = new Map([
  ['advanced-tool-use-2025-11-20', 'tool-search-tool-2025-10-19'],
]);

/** Splits the header into the flags to send and the ones dropped (for the log). */
export function bedrockBetas(header: string | string[] | undefined): { send: string[]; dropped: string[] } {
  const values = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((value) => value.trim())
    .filter((value) => value !== '');
  const send = new Set<string>();
  const dropped: string[] = [];
  for (const value of values) {
    const name = betaAliases.get(value) ?? value;
    if (acceptedBetas.has(name)) send.add(name);
    else dropped.push(value);
  }
  return { send: [...send], dropped };
}

import { describe, expect, it } from 'vitest';
import { invokeModelBodyRules } from '@ccproxy/test-harness';
import { acceptedBetas, betaAliases, bedrockBetas } from '../../src/adapters/bedrock/betas.ts';

/**
 * The `anthropic-beta` allow-list against the strict test server's own list (the service's side):
 * every flag the proxy sends, as itself or as an alias's target, is one Bedrock accepts; every
 * other flag is dropped and named for the log, never sent (Bedrock refuses the whole request).
 */
describe('anthropic-beta → anthropic_beta', () => {
  const body = (flags: string[]) => ({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: 10,
    messages: [{ role: 'user', content: 'hi' }],
    anthropic_beta: flags,
  });

  it.each([...acceptedBetas, ...betaAliases.keys()])('%s is sent as a flag Bedrock accepts', (flag) => {
    const { send, dropped } = bedrockBetas(`claude-code-20250219, ${flag}`);
    expect(send).toEqual([betaAliases.get(flag) ?? flag]);
    expect(dropped).toEqual(['claude-code-20250219']);
    expect(invokeModelBodyRules(body(send))).toEqual([]);
  });

  it('drops and names every flag Bedrock does not know, in either header spelling, and sends a flag once', () => {
    expect(
      bedrockBetas(['oauth-2025-04-20,interleaved-thinking-2025-05-14', 'interleaved-thinking-2025-05-14 , x-1']),
    ).toEqual({ send: ['interleaved-thinking-2025-05-14'], dropped: ['oauth-2025-04-20', 'x-1'] });
    expect(invokeModelBodyRules(body(['oauth-2025-04-20']))).toEqual(['invalid beta flag']);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProxyError, validateMessagesRequest } from '../src/index.ts';

/** Requests Claude Code sent (recorded with their headers; the body is what is checked). */
const fixture = (name: string) =>
  (
    JSON.parse(
      readFileSync(new URL(`../../proxy/test/fixtures/claude-code/${name}.request.json`, import.meta.url), 'utf8'),
    ) as { body: unknown }
  ).body;
const base = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

function messageOf(body: unknown, route: 'messages' | 'count_tokens' = 'messages'): string {
  try {
    validateMessagesRequest(body, route);
    return 'valid';
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).code).toBe('PRX_INVALID_REQUEST');
    return (error as Error).message;
  }
}

describe('validateMessagesRequest', () => {
  it("takes Claude Code's own requests, extra fields, unknown block types and betas", () => {
    expect(messageOf(fixture('first-turn'))).toBe('valid');
    expect(messageOf(fixture('tool-result-turn'))).toBe('valid');
    expect(
      messageOf({
        ...base,
        new_beta_field: { anything: [1, 'x'] },
        messages: [
          {
            role: 'user',
            content: [
              { type: 'future_block', payload: 1 },
              { type: 'text', text: 'x', extra: 1 },
            ],
          },
        ],
      }),
    ).toBe('valid');
    expect(messageOf({ model: 'm', messages: [] }, 'count_tokens')).toBe('valid');
  });

  it.each([
    [{ ...base, messages: [{ role: 'user', content: null }] }, 'messages.0.content: Expected array or string'],
    [{ ...base, system: 5 }, 'system: Expected array or string'],
    [{ ...base, tools: [null] }, 'tools.0: Expected object'],
    [
      { ...base, messages: [{ role: 'user', content: [{ type: 'image', source: null }] }] },
      'messages.0.content.0.source: Expected object',
    ],
    [{ ...base, messages: [{ role: 'user', content: [{ type: 5 }] }] }, 'messages.0.content.0.type: Expected string'],
    [{ ...base, messages: [{ role: 'user', content: [{}] }] }, 'messages.0.content.0.type: Field required'],
    [
      { ...base, messages: [{ role: 'user', content: [{ type: 'text' }] }] },
      'messages.0.content.0.text: Field required',
    ],
    [
      {
        ...base,
        messages: [
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'x', content: [{ type: 'text', text: 3 }] }] },
        ],
      },
      'messages.0.content.0.content.0.text: Expected string',
    ],
    [{ ...base, max_tokens: '5' }, 'max_tokens: Expected integer'],
    [{ model: 'm', messages: [] }, 'max_tokens: Field required'],
    [{ ...base, tool_choice: { type: 'tool' } }, 'tool_choice.name: Field required'],
    [{ ...base, tool_choice: { type: 'bogus' } }, 'tool_choice.type: Expected one of "auto", "any", "none", "tool"'],
    [
      { ...base, 'odd/key': 1, thinking: { type: 'enabled', budget_tokens: 'x' } },
      'thinking.budget_tokens: Expected integer',
    ],
  ])('%j → %s', (body, message) => {
    expect(messageOf(body)).toBe(message);
  });
});

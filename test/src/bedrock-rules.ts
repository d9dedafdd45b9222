/**
 * Converse rules the Smithy model does not express but the service enforces (as reported by
 * users of every gateway that got them wrong; docs/architecture.md, "Bedrock mapping").
 */
interface Block {
  text?: string;
  toolUse?: { toolUseId: string };
  toolResult?: { toolUseId: string; content?: Array<{ text?: string }> };
  cachePoint?: unknown;
}
interface Request {
  messages?: Array<{ role: string; content: Block[] }>;
  system?: Block[];
  toolConfig?: unknown;
  inferenceConfig?: { maxTokens?: number };
}

export function converseServiceRules(body: unknown): string[] {
  const request = body as Request;
  const messages = request.messages ?? [];
  const problems: string[] = [];
  if (messages.length === 0) problems.push('A conversation must have at least one message.');
  if (messages[0] !== undefined && messages[0].role !== 'user')
    problems.push('A conversation must start with a user message.');
  messages.forEach((message, index) => {
    if (index > 0 && messages[index - 1]?.role === message.role)
      problems.push('A conversation must alternate between user and assistant roles.');
    if (message.content.length === 0) problems.push(`messages.${index}: content must not be empty.`);
    for (const block of message.content) {
      if (block.text !== undefined && block.text.trim() === '')
        problems.push(`messages.${index}: text content blocks must contain non-whitespace text.`);
      for (const part of block.toolResult?.content ?? [])
        if (part.text !== undefined && part.text.trim() === '')
          problems.push(`messages.${index}: tool result text must contain non-whitespace text.`);
    }
  });
  for (const block of request.system ?? [])
    if (block.text !== undefined && block.text.trim() === '')
      problems.push('system: text content blocks must contain non-whitespace text.');
  const usesTools = messages.some((message) =>
    message.content.some((block) => block.toolUse !== undefined || block.toolResult !== undefined),
  );
  if (usesTools && request.toolConfig === undefined)
    problems.push('The toolConfig field must be defined when using toolUse and toolResult content blocks.');
  problems.push(...toolResultsMatch(messages));
  const cachePoints = JSON.stringify(body).split('"cachePoint"').length - 1;
  if (cachePoints > 4) problems.push(`A maximum of 4 cache points is allowed, got ${cachePoints}.`);
  return problems;
}

/** Every toolResult answers a toolUse of the assistant turn right before it. */
function toolResultsMatch(messages: Array<{ role: string; content: Block[] }>): string[] {
  const problems: string[] = [];
  messages.forEach((message, index) => {
    const results = message.content.flatMap((block) =>
      block.toolResult === undefined ? [] : [block.toolResult.toolUseId],
    );
    if (results.length === 0) return;
    const previous = new Set(
      (messages[index - 1]?.content ?? []).flatMap((block) =>
        block.toolUse === undefined ? [] : [block.toolUse.toolUseId],
      ),
    );
    for (const id of results)
      if (!previous.has(id))
        problems.push(`messages.${index}: toolResult ${id} does not match a toolUse in the previous turn.`);
  });
  return problems;
}

/** The logger the translators warn on (pino's signature; the request's own child logger). */
export interface WarnLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * One rule for members of Converse's unions the proxy does not know or cannot express
 * (`ContentBlock`, `ContentBlockStart`, `ContentBlockDelta`, `ConverseStreamOutput`, citation
 * locations): the member is skipped — never a crash, never a 500 — and logged once per request
 * and kind with the union and the member's name only, never its content. Bedrock adds members
 * (the model lists image, video, audio, search results, tool results in answers); an answer
 * keeps everything the proxy can translate.
 */
export class SkippedMembers {
  readonly #log: WarnLog | undefined;
  readonly #seen = new Set<string>();

  constructor(log: WarnLog | undefined) {
    this.#log = log;
  }

  /** What was skipped, as `Union.member` (for tests and the request's own log line). */
  get seen(): ReadonlySet<string> {
    return this.#seen;
  }

  note(union: string, member: string): void {
    // A member name comes from the upstream: bounded, so a hostile key cannot fill the log.
    const kind = `${union}.${member.slice(0, 64)}`;
    if (this.#seen.has(kind)) return;
    this.#seen.add(kind);
    this.#log?.warn({ skipped: kind }, 'Bedrock sent a member the proxy cannot translate; skipped');
  }
}

/** The one member set in a union value (Converse unions have exactly one), or undefined. */
export function unionMember(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const key in value) if ((value as Record<string, unknown>)[key] != null) return key;
  return undefined;
}

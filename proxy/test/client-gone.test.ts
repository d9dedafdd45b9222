import { describe, expect, it } from 'vitest';
import { ClientGone } from '../src/pipeline/client-gone.ts';

/** The upstream call's signal (undici and the relay listen to it): raised once, listeners told once. */
describe('ClientGone', () => {
  it('tells each listener still registered exactly once, and nothing after it was raised', () => {
    const gone = new ClientGone();
    const heard: string[] = [];
    const first = () => heard.push('first');
    const removed = () => heard.push('removed');
    gone.addEventListener('abort', first);
    gone.addEventListener('abort', removed);
    gone.addEventListener('abort', () => heard.push('second'));
    gone.removeEventListener('abort', removed);
    expect(gone.aborted).toBe(false);
    gone.abort();
    gone.abort();
    gone.addEventListener('abort', () => heard.push('late'));
    expect(gone.aborted).toBe(true);
    expect(heard).toEqual(['first', 'second']);
  });
});

/**
 * Long steps tell the person waiting what is happening: a line when the step starts, a heartbeat
 * with the elapsed and the expected time while it runs, and a line when it ends. The first
 * `npm test` on a machine builds kube-apiserver for about ten minutes; without this it is silent.
 */
export interface ProgressOptions {
  /** How long the step usually takes, in seconds (said in the start line and every heartbeat). */
  readonly expectedSeconds: number;
  /** Seconds between heartbeats. */
  readonly everySeconds?: number;
  /** Where the lines go (stderr by default: vitest shows a global setup's stderr as it comes). */
  readonly write?: (line: string) => void;
  /** The clock, for tests. */
  readonly now?: () => number;
  /** Who is speaking, at the start of every line. */
  readonly prefix?: string;
}

const defaultWrite = (line: string) => void process.stderr.write(`${line}\n`);

export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  const rest = whole % 60;
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
}

/** Runs `body`, reporting its start, a heartbeat and its end (or failure) under `label`. */
export async function longStep<T>(label: string, options: ProgressOptions, body: () => Promise<T>): Promise<T> {
  const write = options.write ?? defaultWrite;
  const now = options.now ?? Date.now;
  const expected = formatDuration(options.expectedSeconds);
  const started = now();
  const elapsed = () => formatDuration((now() - started) / 1000);
  const say = (what: string) => write(`[${options.prefix ?? 'ccproxy test setup'}] ${label}: ${what}`);
  say(`starting (usually about ${expected})`);
  const heartbeat = setInterval(
    () => say(`still running, ${elapsed()} elapsed of about ${expected}`),
    (options.everySeconds ?? 30) * 1000,
  );
  heartbeat.unref();
  try {
    const result = await body();
    say(`done in ${elapsed()}`);
    return result;
  } catch (error) {
    say(`failed after ${elapsed()}`);
    throw error;
  } finally {
    clearInterval(heartbeat);
  }
}

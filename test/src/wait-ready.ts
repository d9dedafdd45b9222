/** How a started server is polled until it answers: what to ask, and how to describe a failure. */
export interface ReadyProbe {
  /** e.g. `ccproxy` or `moto`, for the error message. */
  name: string;
  /** The URL that answers 2xx once the server is ready. */
  url: string;
  exited: Promise<number | null>;
  /** The process's output so far, shown when it dies or never answers. */
  output: () => string;
  timeoutMs: number;
  intervalMs: number;
}

/** Polls until the server answers, failing at once (with its output) if the process exits first. */
export async function waitReady(probe: ReadyProbe): Promise<void> {
  let dead: number | null | undefined;
  void probe.exited.then((code) => {
    dead = code;
  });
  const deadline = Date.now() + probe.timeoutMs;
  while (Date.now() < deadline) {
    if (dead !== undefined)
      throw new Error(`${probe.name} exited with ${dead} before it was ready:\n${probe.output()}`);
    const ok = await fetch(probe.url).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, probe.intervalMs));
  }
  throw new Error(`${probe.name} not ready after ${probe.timeoutMs} ms:\n${probe.output()}`);
}

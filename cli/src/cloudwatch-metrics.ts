import { CloudWatchEmf, type CircuitBreakers } from '@ccproxy/proxy';

/** When enabled, CloudWatch EMF lines go to stdout once a minute (and once more on stop). */
export function startCloudWatchMetrics(
  enabled: boolean,
  breakers: CircuitBreakers,
): { emf: CloudWatchEmf | undefined; stop(): void } {
  if (!enabled) return { emf: undefined, stop: () => undefined };
  const emf = new CloudWatchEmf((line) => process.stdout.write(`${line}\n`));
  const flush = () => {
    emf.setCircuitOpen(breakers.openCount());
    emf.flush();
  };
  const timer = setInterval(flush, 60_000);
  timer.unref();
  return {
    emf,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}

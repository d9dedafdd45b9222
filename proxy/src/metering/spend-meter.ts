import { Counter, type Registry } from 'prom-client';
import { buildPriceTable, usageRecordCostMicroUsd, type PriceTable, type UsageRecord } from '@ccproxy/core';

const providers = ['plan', 'bedrock'] as const;

/**
 * Spend by provider for the dashboards: `ccproxy_spend_usd_total{provider}` adds each metered
 * request's cost, priced by the same table and the same rule as the usage store
 * (`usageRecordCostMicroUsd`), and `ccproxy_unpriced_requests_total{provider}` counts the metered
 * requests whose model the table lacks (their cost is unknown, never 0). The label is the
 * provider only (two values): the per-user, per-key view is the admin's usage page.
 *
 * Called once per request where its usage record is made, after the answer ended: never per
 * chunk. Counted for every metered answer, stored or not (Plan usage is priced even when
 * CCPROXY_METER_PLAN keeps it out of Postgres), so the dashboards show what each upstream cost.
 */
export class SpendMeter {
  readonly #prices: PriceTable;
  readonly #spend: Counter<'provider'>;
  readonly #unpriced: Counter<'provider'>;

  constructor(registry: Registry, prices: PriceTable = buildPriceTable()) {
    this.#prices = prices;
    this.#spend = new Counter({
      name: 'ccproxy_spend_usd_total',
      help: 'Priced cost in USD of metered requests (the usage store\u2019s price table), by provider.',
      labelNames: ['provider'],
      registers: [registry],
    });
    this.#unpriced = new Counter({
      name: 'ccproxy_unpriced_requests_total',
      help: 'Metered requests whose model the price table lacks (their cost is not in ccproxy_spend_usd_total), by provider.',
      labelNames: ['provider'],
      registers: [registry],
    });
    // Both series exist from the start, so a dashboard's rate() has a zero to begin from.
    for (const provider of providers) {
      this.#spend.inc({ provider }, 0);
      this.#unpriced.inc({ provider }, 0);
    }
  }

  /** Counts the record; its cost in USD for CloudWatch, null when unpriced, undefined when not metered. */
  observe(record: UsageRecord): number | null | undefined {
    const { provider } = record;
    if (record.metered === false || provider === null) return undefined;
    const micro = usageRecordCostMicroUsd(this.#prices, record);
    if (micro === undefined) {
      this.#unpriced.inc({ provider });
      return null;
    }
    const usd = micro / 1e6;
    if (usd > 0) this.#spend.inc({ provider }, usd);
    return usd;
  }
}

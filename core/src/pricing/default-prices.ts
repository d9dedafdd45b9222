import type { PriceTableFile } from './price-table.ts';

/**
 * The built-in price table: USD per million tokens, from Anthropic's published model pricing
 * (https://platform.claude.com/docs/en/about-claude/pricing, read on the date below). Amazon
 * Bedrock lists the same per-token prices for its global cross-Region profiles; its regional
 * and geographic profiles cost `bedrockRegionalMultiplier` more for the models flagged
 * `regionalPremium` (the 4.5-and-later generation). Verify before billing and override with
 * CCPROXY_PRICE_TABLE_FILE (see the README's "Prices" section): an override entry with a later
 * `from` date, or the same family, wins over these.
 *
 * `family` is the normalised model id (see `normaliseModelId`: region prefix, `anthropic.`, date and
 * `-v1:0` suffixes removed).
 */
export const defaultPriceTable: PriceTableFile = {
  effectiveDate: '2026-12-07',
  source: 'https://platform.claude.com/docs/en/about-claude/pricing',
  bedrockRegionalMultiplier: 1.1,
  entries: [
    e('claude-fable-5-1', 10, 50, 0.25, 12.5, 20, true),
    e('claude-mythos-5-1', 10, 50, 0.25, 12.5, 20, true),
    e('claude-fable-5', 10, 50, 1, 12.5, 20, true),
    e('claude-mythos-5', 10, 50, 1, 12.5, 20, true),
    e('claude-opus-5-5', 4, 20, 0.2, 5, 8, true),
    e('claude-opus-5', 5, 25, 0.5, 6.25, 10, true),
    e('claude-opus-4-8', 5, 25, 0.5, 6.25, 10, true),
    e('claude-opus-4-7', 5, 25, 0.5, 6.25, 10, true),
    e('claude-opus-4-6', 5, 25, 0.5, 6.25, 10, true),
    e('claude-opus-4-5', 5, 25, 0.5, 6.25, 10, true),
    e('claude-opus-4-1', 15, 75, 1.5, 18.75, 30, false),
    e('claude-opus-4', 15, 75, 1.5, 18.75, 30, false),
    e('claude-3-opus', 15, 75, 1.5, 18.75, 30, false),
    e('claude-sonnet-5-5', 2, 10, 0.1, 2.5, 4, true),
    e('claude-sonnet-5', 2, 10, 0.2, 2.5, 4, true),
    e('claude-sonnet-4-6', 3, 15, 0.3, 3.75, 6, true),
    // Sonnet 4 and 4.5 bill a whole request at the long-context rate past 200K input tokens.
    { ...e('claude-sonnet-4-5', 3, 15, 0.3, 3.75, 6, true), longContext: longSonnet() },
    { ...e('claude-sonnet-4', 3, 15, 0.3, 3.75, 6, false), longContext: longSonnet() },
    e('claude-3-7-sonnet', 3, 15, 0.3, 3.75, 6, false),
    e('claude-3-5-sonnet', 3, 15, 0.3, 3.75, 6, false),
    e('claude-haiku-4-5', 1, 5, 0.1, 1.25, 2, true),
    e('claude-3-5-haiku', 0.8, 4, 0.08, 1, 1.6, false),
    e('claude-3-haiku', 0.25, 1.25, 0.03, 0.3, 0.5, false),
  ],
};

function e(
  family: string,
  input: number,
  output: number,
  cacheRead: number,
  cacheWrite5m: number,
  cacheWrite1h: number,
  regionalPremium: boolean,
) {
  return { family, from: '2025-01-01', input, output, cacheRead, cacheWrite5m, cacheWrite1h, regionalPremium };
}

function longSonnet() {
  return { aboveInputTokens: 200_000, input: 6, output: 22.5, cacheRead: 0.6, cacheWrite5m: 7.5, cacheWrite1h: 12 };
}

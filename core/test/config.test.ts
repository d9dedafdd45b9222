import { describe, expect, it } from 'vitest';
import { ConfigError, commonFields, loadConfig, proxyFields } from '@ccproxy/core';

const fields = { ...commonFields, ...proxyFields };

describe('loadConfig', () => {
  it('applies the documented defaults when nothing is set', () => {
    const config = loadConfig(fields, {});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir: '.data',
      anthropicUpstreamUrl: 'https://api.anthropic.com',
      maxBodyBytes: 32 * 1024 * 1024,
    });
    expect(config.databaseUrl).toBeUndefined();
  });

  it('converts strings from the environment to the declared types', () => {
    const config = loadConfig(fields, {
      PORT: '9000',
      CCPROXY_MAX_BODY_BYTES: '2048',
      DATABASE_URL: 'postgres://u@127.0.0.1:5432/db',
    });
    expect(config.port).toBe(9000);
    expect(config.maxBodyBytes).toBe(2048);
    expect(config.databaseUrl).toBe('postgres://u@127.0.0.1:5432/db');
  });

  it('reports every problem at once, naming the variables', () => {
    let caught: unknown;
    try {
      loadConfig(fields, {
        PORT: 'eighty',
        ANTHROPIC_UPSTREAM_URL: 'ftp://x',
        CCPROXY_KEY_HASHER_SECRET: 'short',
        DATABASE_URL: 'mysql://x',
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/PORT="eighty"/);
    expect(problems.join('\n')).toMatch(/ANTHROPIC_UPSTREAM_URL="ftp:\/\/x"/);
    expect(problems.join('\n')).toMatch(/CCPROXY_KEY_HASHER_SECRET/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL/);
    // Secrets are named, never echoed.
    expect((caught as ConfigError).message).not.toContain('short');
    expect((caught as ConfigError).message).not.toContain('mysql://x');
  });

  it('rejects out-of-range numbers', () => {
    expect(() => loadConfig(fields, { PORT: '70000' })).toThrow(/PORT="70000" is invalid/);
  });
});

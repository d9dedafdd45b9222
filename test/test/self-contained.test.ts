import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A clone with nothing beside it must pass its own tests and make sense to read: nothing tracked by
 * git may reach outside the repository (a design folder beside it, a developer's absolute path),
 * and the vendored Bedrock model is the file its README describes.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((file) => file !== '' && !file.endsWith('package-lock.json'));

/** Ways a file can point outside the repository. Each is a path-like spelling, not a word. */
const outsidePatterns: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: 'a folder beside the repository', pattern: /(?:^|[\s'"`(=:])(?:\.\.\/)+shared(?=\/|['"`)\s]|$)/ },
  { name: 'the team design folder', pattern: /\bshared\/(?:DESIGN\.md|research\/|fixtures\/|hooks\/)/ },
  {
    name: 'an absolute path on a developer machine',
    pattern: /(?:^|[\s'"`(=])\/(?:work|home\/[a-z]+|Users\/[A-Za-z]+)\//,
  },
];

const textFile = (file: string) => !/\.(png|jpe?g|gif|ico|woff2?|ttf|pdf|gz|br|wasm)$/i.test(file);

function findOutsideReferences(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files.filter(textFile)) {
    const lines = readFileSync(path.join(root, file), 'utf8').split('\n');
    lines.forEach((line, index) => {
      for (const { name, pattern } of outsidePatterns)
        if (pattern.test(line)) found.push(`${file}:${index + 1}: ${name}: ${line.trim().slice(0, 120)}`);
    });
  }
  return found;
}

describe('the repository is self-contained', () => {
  it('no tracked file refers to anything outside the repository', () => {
    expect(tracked.length).toBeGreaterThan(100);
    expect(findOutsideReferences(tracked)).toEqual([]);
  });

  it('the check itself finds each way out (so an empty answer above means something)', () => {
    // The spellings are built at run time, so this file does not trip its own check.
    const [dots, folder] = ['..', 'shared'];
    const samples = [
      `const model = new URL('${dots}/${dots}/${folder}/fixtures/x.json', import.meta.url);`,
      `See [the design](${dots}/${folder}/DESIGN.md).`,
      `cat ${'/'}work/main/README.md`,
      `notes in ${folder}/research/mapping.md`,
    ];
    for (const sample of samples)
      expect(
        outsidePatterns.some(({ pattern }) => pattern.test(sample)),
        sample,
      ).toBe(true);
    for (const fine of [
      'a shared breaker',
      'Breaker state is shared by all replicas',
      `import x from "${dots}/${folder}.ts"`,
    ])
      expect(
        outsidePatterns.some(({ pattern }) => pattern.test(fine)),
        fine,
      ).toBe(false);
  });

  it('the vendored Bedrock Runtime model is the one its README names', () => {
    const model = readFileSync(path.join(root, 'test/fixtures/bedrock-runtime/bedrock-runtime.smithy.json'));
    expect(createHash('sha256').update(model).digest('hex')).toBe(
      '50aab19bf349de89cdd4c727876e7cea2f929f3484a3edf7521de54a43ed927f',
    );
    const readme = readFileSync(path.join(root, 'test/fixtures/bedrock-runtime/README.md'), 'utf8');
    expect(readme).toContain('56ee88c5c6edd967967656f1e29f46b229105e79');
    expect(readme).toMatch(/licen[cs]e/i);
    const shapes = Object.keys((JSON.parse(model.toString('utf8')) as { shapes: object }).shapes);
    expect(shapes.length).toBe(354);
  });
});

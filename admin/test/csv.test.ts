import { describe, expect, it } from 'vitest';
import { csvCell, csvLine } from '../src/csv.ts';

/** The CSV exports' one cell rule: RFC 4180 quoting, and no cell a spreadsheet would run as a formula. */
describe('CSV cells', () => {
  it('guards every formula trigger, whatever follows it, and quotes what needs quoting', () => {
    for (const trigger of ['=', '+', '-', '@', '\t', '\r'])
      for (const rest of ['1+1', 'HYPERLINK("http://x","y")', "cmd|' /C calc'!A0", ''])
        expect(csvCell(`${trigger}${rest}`).replace(/^"/, '').startsWith("'"), JSON.stringify(trigger + rest)).toBe(
          true,
        );
    expect(csvCell('=SUM(A1:A2)')).toBe("'=SUM(A1:A2)");
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell('cr\rhere')).toBe('"cr\rhere"');
    expect(csvCell('team-a/alice')).toBe('team-a/alice');
  });

  it('writes numbers, booleans and empties as themselves (a negative number is not text)', () => {
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(0.000315)).toBe('0.000315');
    expect(csvCell(true)).toBe('true');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvLine(['a', 1, null, '=x'])).toBe("a,1,,'=x\r\n");
  });
});

/**
 * Outside review AF (item 2). `UNSAFE` in packages/pulse-streaming-cli/src/format.ts,
 * the characters escaped before text from Redis reaches a terminal, held the
 * bidi marks U+200E/U+200F, the embeddings and overrides U+202A-U+202E and
 * the isolates U+2066-U+2069, but not U+061C (ARABIC LETTER MARK), which is
 * a bidi control as well: a name or payload holding it was printed as it
 * was, and a terminal that does bidi reordering could show the text in
 * another order than it has. Expected: every bidi control is escaped
 * (`\u061c`) as the others are, by displayText, payloadDisplay and quoted.
 *
 * Failed before the fix: the U+061C case (1 of 13: displayText returned the
 * text as it was); the others passed.
 * Fixed: format.ts UNSAFE and UNSAFE_JSON hold U+061C.
 */
import { describe, expect, it } from 'vitest';
import { displayText, payloadDisplay, quoted } from '../packages/pulse-streaming-cli/src/format.js';

const BIDI = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069];
const hex = (c: number): string => `\\u${c.toString(16).padStart(4, '0')}`;

describe('format.ts escapes every bidi control before a terminal', () => {
  const cases = BIDI.map((code) => [code.toString(16).toUpperCase().padStart(4, '0'), code] as const);
  it.for(cases)('U+%s is escaped by displayText, payloadDisplay and quoted', ([, code]) => {
    const ch = String.fromCharCode(code);
    const text = `abc${ch}def`;
    const escaped = `"abc${hex(code)}def"`;
    const shown = displayText(text);
    expect(shown).toBe(escaped);
    expect(shown).not.toContain(ch);
    expect(payloadDisplay(new TextEncoder().encode(text))).toBe(escaped);
    expect(quoted(text)).toBe(escaped);
    // Still a JSON string of the same text.
    expect(JSON.parse(shown)).toBe(text);
  });

  // Invisible characters that make two names look alike (`billing` and `billing` + U+200B): outside trial, session 28.
  it.for([0x00ad, 0x200b, 0x2060, 0xfeff])('invisible U+%s is escaped too', (code) => {
    const text = `billing${String.fromCharCode(code)}`;
    expect(displayText(text)).toBe(`"billing${hex(code)}"`);
    expect(JSON.parse(displayText(text))).toBe(text);
  });

  it('leaves text without them as it is', () => {
    expect(displayText('orders-ٱ')).toBe('orders-ٱ');
  });
});

/**
 * Names and text shown to an operator, in a terminal (format.ts) or on the
 * dashboard's page: the characters that would act instead of showing
 * (controls, bidi overrides that reorder what is around them) written as
 * escapes. No Node module: the dashboard's front end imports it too.
 */

/**
 * Characters that must not reach a terminal or a page as they are: C0 and C1 controls
 * (newlines break the one-line format, ESC starts terminal sequences), DEL,
 * the Unicode line separators and the bidirectional controls (which reorder
 * what is shown): the Arabic letter mark U+061C, the marks U+200E/U+200F,
 * the embeddings and overrides U+202A-U+202E and the isolates U+2066-U+2069;
 * and the invisible ones that make two names look alike (`billing` and
 * `billing` with a zero-width space: outside trial): the soft hyphen U+00AD,
 * the zero-width space U+200B, the word joiner U+2060 and the BOM U+FEFF.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b\u2028\u2029\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/;
// What JSON.stringify leaves as is among them.
const UNSAFE_JSON = /[\u007f-\u009f\u00ad\u061c\u200b\u2028\u2029\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;

/** JSON text with the characters of {@link UNSAFE} that JSON.stringify leaves written as `\\uXXXX` (they only occur in strings). */
function escapeJson(json: string): string {
  return json.replace(UNSAFE_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `text` as a JSON string literal, with every character of {@link UNSAFE} escaped (JSON.stringify leaves some). */
export function quoted(text: string): string {
  return escapeJson(JSON.stringify(text));
}

/**
 * `value` as JSON text (indented by `indent` spaces when given) for the
 * terminal: JSON.stringify escapes C0 controls but leaves DEL, the C1
 * controls, U+2028/U+2029 and the bidi controls as they are, and a terminal
 * acts on them (U+009B is CSI); here every character of {@link UNSAFE} is
 * `\\uXXXX`, so the text is still valid JSON of the same value.
 */
export function jsonText(value: unknown, indent?: number): string {
  return escapeJson(JSON.stringify(value, null, indent));
}

/** `text` with each character of {@link UNSAFE} written as `\\uXXXX` (for a message that is not one value: an error line). */
export function escapeUnsafe(text: string): string {
  return text.replace(new RegExp(UNSAFE.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Whether `text` holds a character of {@link UNSAFE}. */
export function isUnsafe(text: string): boolean {
  return UNSAFE.test(text);
}

/** A name or topic for a terminal line or the page: as is when it is safe to print, else quoted and escaped. */
export function displayText(text: string): string {
  return UNSAFE.test(text) || text.startsWith('"') ? quoted(text) : text;
}

/**
 * An event name or topic in a line, in quotes when it is empty or holds a
 * space, a quote or a bracket of the line's layout: a producer's name
 * `order.created [eu] {tenant=acme}` read exactly as an `order.created`
 * event of topic `eu` with a header, and an empty name as none before the
 * payload (outside trial).
 */
export function lineField(text: string): string {
  return /[\s"[\]{}]|^$/.test(text) ? quoted(text) : displayText(text);
}

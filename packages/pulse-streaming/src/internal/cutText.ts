/**
 * Text that came from outside (an event name a producer wrote, a codec's
 * error message about a payload) cut to a length a stored field, a log line
 * or a span attribute can carry.
 */

/** `text` cut to at most `max` characters, the last one `…` when something was cut. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  // Not between the two halves of a surrogate pair: a lone surrogate is stored or exported as U+FFFD (or refused).
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}\u2026`;
}

import { InvalidArgumentError } from '../errors.js';

/** A compiled topic matcher: exact string, or a RegExp tested against the topic. */
export type TopicMatcher = (topic: string | undefined) => boolean;

export function topicMatcher(topic: unknown): TopicMatcher | undefined {
  if (topic === undefined) return undefined;
  if (typeof topic === 'string') return (t) => (t ?? '') === topic;
  if (topic instanceof RegExp) {
    // A global or sticky RegExp keeps state in lastIndex between tests and would
    // skip every other match: test with a stateless copy instead.
    const re = topic.global || topic.sticky ? new RegExp(topic.source, topic.flags.replace(/[gy]/g, '')) : topic;
    return (t) => re.test(t ?? '');
  }
  throw new InvalidArgumentError(`topic must be a string or a RegExp, got ${typeof topic}`);
}

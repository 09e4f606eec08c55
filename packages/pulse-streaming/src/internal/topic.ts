import { InvalidArgumentError } from '../errors.js';
import { checkWellFormed } from './validate.js';

/** A compiled topic matcher: exact string, or a RegExp tested against the topic. */
export type TopicMatcher = (topic: string | undefined) => boolean;

export function topicMatcher(topic: unknown): TopicMatcher | undefined {
  if (topic === undefined) return undefined;
  if (typeof topic === 'string') {
    // A stored topic is well-formed: one with a lone surrogate would silently match nothing.
    checkWellFormed('topic', topic);
    return (t) => (t ?? '') === topic;
  }
  if (topic instanceof RegExp) {
    // A global or sticky RegExp keeps state in lastIndex between tests: test
    // with a private copy (sticky kept, so it stays anchored) from index 0.
    if (!topic.global && !topic.sticky) return (t) => topic.test(t ?? '');
    const re = new RegExp(topic.source, topic.flags.replace('g', ''));
    return (t) => {
      re.lastIndex = 0;
      return re.test(t ?? '');
    };
  }
  throw new InvalidArgumentError(`topic must be a string or a RegExp, got ${typeof topic}`);
}

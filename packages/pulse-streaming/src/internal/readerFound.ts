/**
 * How a reader tells what a loss check found (readerLoss.ts): counted
 * losses, and what cannot be counted.
 */
import type { LossReport } from './lossReport.js';
import type { Found } from './readerLoss.js';

/** Tells what a check of stream `stream` found (counted losses, and what cannot be counted). */
export function reportFound(report: LossReport, stream: string, found: Found): void {
  const fields = { stream };
  switch (found.say) {
    case undefined:
    case 'uncertain':
      report.lost(found.lost, fields, 'events trimmed or deleted before this reader read them');
      if (found.say === 'uncertain') {
        report.unknown(
          fields,
          'entries after the start were deleted before its first exact count: events among them may be lost, how many is unknown',
        );
      }
      return;
    case 'nokey':
      report.lost(found.lost, fields, 'stream key is gone (deleted or expired) with events this reader had not read');
      report.unknown(
        fields,
        'stream key is gone (deleted or expired): events not read yet, if any, are lost, how many is unknown' +
          (found.lost > 0 ? ` (at least the ${found.lost} counted)` : ''),
      );
      return;
    case 'recreated':
      report.lost(found.lost, fields, 'stream key deleted and created again, or Redis went back in time: unread events are gone');
      report.unknown(
        fields,
        'stream key was deleted and created again, or Redis lost data (restarted from an older snapshot, a failover to a ' +
          'replica that was behind): events not read yet are lost, ' +
          (found.lost > 0 ? `at least ${found.lost} (counted), how many more is unknown` : 'how many is unknown') +
          (found.rewind === undefined
            ? ''
            : `; reading again from ${found.rewind}, before the loss (events after it may come twice)`),
      );
      return;
    case 'unsupported':
      report.unknown(fields, 'this Redis cannot tell trimmed events (needs 7.0): losses are not counted');
  }
}

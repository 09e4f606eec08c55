/**
 * The fields of a dead letter as the library writes them (`n`, `p`, `source_*`,
 * `deliveries`, `reason`), for tests that XADD letters with chosen IDs.
 */
export function deadLetterFields(sourceStream: string, i: number): string[] {
  return [
    'n',
    'e',
    'p',
    `p${i}`,
    'source_stream',
    sourceStream,
    'source_sink',
    'g',
    'source_id',
    `${i}-0`,
    'deliveries',
    '1',
    'reason',
    'r',
  ];
}

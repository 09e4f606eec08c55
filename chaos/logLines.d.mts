/** What a chaos consumer makes of one logged line (see logLines.mjs). */
export type LineClass =
  | { kind: 'stale' }
  | { kind: 'dead'; ids: string[] | undefined }
  | { kind: 'lost'; ids: string[] }
  | { kind: 'lostCount'; count: number }
  | { kind: 'lostNoCount' };
export function classifyLine(text: string, obj: Record<string, unknown> | undefined): LineClass | undefined;

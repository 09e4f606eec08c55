// Child for childOutputBeforeExit.test.ts: writes argv[2] bytes of filler, then a LAST line, and exits at once.
// The filler makes the parent still be reading when the child is gone.
process.stdout.write(`${'x'.repeat(Number(process.argv[2]))}\nLAST\n`);

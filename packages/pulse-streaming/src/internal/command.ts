/** One argument of a Redis command as the library sends it. */
export type Arg = string | Buffer | number;

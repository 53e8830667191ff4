/** One benchmark: returns its figures and conditions; the runner prints them as one JSON line. */
export type Bench = (args: string[]) => Promise<Record<string, unknown>>;

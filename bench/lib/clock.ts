/**
 * Milliseconds on CLOCK_MONOTONIC (what process.hrtime reads on Linux): one
 * clock for every process on the machine, so a time taken in one process can
 * be subtracted from a time taken in another.
 */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

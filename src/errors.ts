/** A failure that retrying cannot fix (the message itself is the problem): dead-letter at once. */
export class PermanentError extends Error {}

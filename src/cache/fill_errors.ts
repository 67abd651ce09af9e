// How a fill can fail: the bytes were wrong, or our own disk was.

/** The bytes did not match the image's size or checksum. */
export class ChecksumMismatch extends Error {}

/** Our own disk failed us (full, I/O error): the source is fine, readers can go on from it. */
export class LocalIOError extends Error {}

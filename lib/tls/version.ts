/** Older protocol versions have known weaknesses; every maintained client speaks 1.2. */
export const TLS_MIN_VERSION = 'TLSv1.2';

/** The 64 characters of base64url, so each random byte gives one character of 6 random bits. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * 43 characters of base64url, each 6 random bits: 258 bits, far past the 128
 * a guess would need to beat. Read straight from the alphabet (a byte's low
 * six bits are uniform), not through btoa, which a profile of the resume
 * path showed.
 */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(43))
  let token = ''
  for (const byte of bytes) token += ALPHABET.charAt(byte & 63)
  return token
}

/** Every byte's two hex digits, made once. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'))

/** Only a hash is stored, so a copy of the database does not hand out live sessions. */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  let hex = ''
  for (const byte of new Uint8Array(digest)) hex += HEX[byte] ?? ''
  return hex
}

// @ts-check
// The sign-in cookie of the chat example: `<payload>.<signature>`, where the payload is the user as
// base64url JSON and the signature its HMAC-SHA256 under the server's secret. Whoever holds the
// secret can mint a user; nobody else can change a byte of one without the check failing.
//
// A signed cookie stays valid until it expires or the secret changes, wherever a copy of it is: to
// end a sign-in before that, the server must remember to refuse it (server.mjs does, on sign-out).
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The cookie's name. */
export const COOKIE = 'chat_user';

/** How long a sign-in lasts, ms: the browser forgets the cookie then, and the server refuses it. */
export const SIGN_IN_FOR = 7 * 24 * 60 * 60 * 1000;

/** Longest cookie header read, in characters: a header is client input like any other. */
const MAX_COOKIE_HEADER = 8 * 1024;

/**
 * @typedef {object} User
 * @property {string} id random, given at sign-in: two people who pick the same name stay two users
 * @property {string} name the display name they chose
 */

/**
 * A user as a cookie signs them in.
 * @typedef {User & { exp: number }} SignIn exp: when the cookie expires, ms since the epoch
 */

/** @param {string} payload @param {string} secret */
const sign = (payload, secret) => createHmac('sha256', secret).update(payload).digest('base64url');

/**
 * The `Set-Cookie` value that signs `user` in. HttpOnly: the page's scripts never see it, so an
 * injected script cannot steal it. SameSite=Lax: other sites' forms and fetches do not carry it.
 *
 * @param {User} user
 * @param {string} secret
 * @param {{ secure: boolean, now?: number }} options secure: set on HTTPS, where the browser must never
 *   send the cookie over plain HTTP
 */
export function signInCookie(user, secret, { secure, now = Date.now() }) {
  const payload = Buffer.from(JSON.stringify({ id: user.id, name: user.name, exp: now + SIGN_IN_FOR })).toString('base64url');
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${SIGN_IN_FOR / 1000}`, ...(secure ? ['Secure'] : [])];
  return `${COOKIE}=${payload}.${sign(payload, secret)}; ${attributes.join('; ')}`;
}

/** The `Set-Cookie` value that signs out: the same cookie, expired. */
export function signOutCookie() {
  return `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}

/**
 * The sign-in of a request's `Cookie` header, or `null` when there is no cookie, its signature is
 * wrong, or it expired.
 *
 * @param {string | undefined} header
 * @param {string} secret
 * @param {number} [now]
 * @returns {SignIn | null}
 */
export function readSignIn(header, secret, now = Date.now()) {
  if (!header || header.length > MAX_COOKIE_HEADER) return null;
  const value = header
    .split(';')
    .map((pair) => pair.trim())
    .find((pair) => pair.startsWith(`${COOKIE}=`))
    ?.slice(COOKIE.length + 1);
  const [payload, signature, extra] = (value ?? '').split('.');
  if (!payload || !signature || extra !== undefined) return null;
  const expected = Buffer.from(sign(payload, secret));
  const given = Buffer.from(signature);
  // A comparison that takes as long whatever the bytes, so timing tells nothing about the signature.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const { id, name, exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if (typeof id !== 'string' || typeof name !== 'string' || typeof exp !== 'number' || exp <= now) return null;
    return { id, name, exp };
  } catch {
    return null;
  }
}

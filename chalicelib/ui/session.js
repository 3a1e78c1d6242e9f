/* Who is signed in: the token lives in localStorage and nowhere the console or a URL shows it. */

const TOKEN_KEY = "bench.token";
const EMAIL_KEY = "bench.email";

export const session = {
  token: localStorage.getItem(TOKEN_KEY),
  email: localStorage.getItem(EMAIL_KEY) || "",
};

const listeners = [];

/** fn(signedIn: boolean, message?: string), called on every sign-in and sign-out. */
export function onSessionChange(fn) {
  listeners.push(fn);
}

export function signIn(token, email) {
  session.token = token;
  session.email = email;
  localStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(EMAIL_KEY, email);
  listeners.forEach((fn) => fn(true));
}

/** Once per session: the answers of other requests refused with it change nothing. */
export function signOut(message) {
  if (!session.token) return;
  session.token = null;
  localStorage.removeItem(TOKEN_KEY);
  listeners.forEach((fn) => fn(false, message));
}

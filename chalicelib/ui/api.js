/* The REST API, addressed relative to the app root so the UI works under a stage prefix. */
import { session, signOut } from "./session.js";

const BASE_URL = new URL("../", import.meta.url); // ui/api.js is one level below the root

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || "Request failed (" + status + ")");
    this.status = status;
    this.body = body || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(path, BASE_URL), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { error: "Cannot reach the server. Check your connection." });
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (response.status === 401 && !path.startsWith("api/auth/")) {
    signOut("Your session has ended. Please sign in again.");
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && data.error ? data : { error: response.statusText || "Request failed" });
  }
  return data;
}

export function path(template, ...ids) {
  let i = 0;
  return template.replace(/\{\}/g, () => encodeURIComponent(ids[i++]));
}

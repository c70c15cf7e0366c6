// The consoles' REST client (the admin dashboard and the agent console): JSON in and out of
// /api/v1 with the signed-in agent's bearer token, every failure an ApiError carrying the
// RFC 9457 problem. A 401 for the token still in use tells the page its sign-in has ended.
(function () {
  "use strict";

  const API = "/api/v1";

  function isObject(value) { return value !== null && typeof value === "object"; }

  class ApiError extends Error {
    constructor(status, problem, retryAfter) {
      const body = isObject(problem) ? problem : {};
      super(typeof body.detail === "string" ? body.detail : typeof body.title === "string" ? body.title : "HTTP " + status);
      this.status = status;
      this.problem = body;
      this.code = body.code;
      this.retryAfter = retryAfter;
    }
  }

  // token(): the current bearer token or null; expired(): the page's sign-out, called once
  // for the token that got the 401; unreachable(): the text when the server cannot be reached.
  function client({ token, expired, unreachable }) {
    return async function api(method, path, body, options) {
      const auth = !(options && options.auth === false);
      const sent = token();
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (auth && sent) headers.Authorization = "Bearer " + sent;
      let res;
      try {
        res = await fetch(API + path, {
          method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new ApiError(0, { detail: unreachable() });
      }
      let data = null;
      try { data = await res.json(); } catch (err) { data = null; }
      if (res.ok) return isObject(data) ? data : {};
      const error = new ApiError(res.status, data, res.headers.get("Retry-After"));
      if (res.status === 401 && auth && sent && sent === token()) expired();
      throw error;
    };
  }

  // The problem's detail for a person to read, else `fallback`.
  function problemText(err, fallback) {
    if (err && err.status === 0) return err.message;
    const detail = err && err.problem && err.problem.detail;
    return typeof detail === "string" && detail ? detail : fallback;
  }

  window.SupportApi = { API, ApiError, client, isObject, problemText };
})();

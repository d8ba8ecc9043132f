// Development default; nginx serves a rendered copy (FINCH_API_BASE_URL) in place of this file.
window.FINCH_CONFIG = { apiBaseUrl: "http://127.0.0.1:8000" };

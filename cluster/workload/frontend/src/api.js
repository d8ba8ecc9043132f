// The API base URL comes from /config.js at runtime, so one bundle serves every environment.
const base = ((window.FINCH_CONFIG && window.FINCH_CONFIG.apiBaseUrl) || "").replace(/\/$/, "");

async function request(path, options = {}) {
  const response = await fetch(`${base}${path}`, {
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  if (!response.ok) {
    throw new Error(`${options.method || "GET"} ${path}: HTTP ${response.status}`);
  }
  return response.json();
}

export const api = {
  base,
  meta: () => request("/api/meta"),
  summary: (accountId) => request(`/api/accounts/${accountId}/summary`),
  transactions: (page, accountId) =>
    request(`/api/transactions?page=${page}${accountId ? `&account=${accountId}` : ""}`),
  createTransaction: (body) =>
    request("/api/transactions", { method: "POST", body: JSON.stringify(body) }),
  taskStats: () => request("/api/tasks/stats"),
};

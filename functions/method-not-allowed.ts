// 405 instead of 404 when the path exists under another method. Hono's router answers "not found"
// for both; this looks the path up in the registered routes (middleware, registered as ALL, is
// ignored) and returns the methods that would have matched, for the Allow header.

interface RouteLike {
  method: string;
  path: string;
}

const patterns = new WeakMap<readonly RouteLike[], { method: string; pattern: RegExp }[]>();

export function methodNotAllowed(routes: readonly RouteLike[], method: string, path: string) {
  let compiled = patterns.get(routes);
  if (!compiled) {
    compiled = routes
      .filter((route) => route.method !== "ALL")
      .map((route) => ({ method: route.method, pattern: toPattern(route.path) }));
    patterns.set(routes, compiled);
  }
  const allowed = new Set(
    compiled.filter((route) => route.pattern.test(path)).map((route) => route.method),
  );
  if (allowed.has("GET")) allowed.add("HEAD");
  return allowed.has(method) ? [] : [...allowed].sort();
}

function toPattern(path: string): RegExp {
  const source = path
    .split("/")
    .map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}/?$`);
}

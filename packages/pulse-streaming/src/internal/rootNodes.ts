/**
 * Where a new node-redis cluster connection of the library's discovers the
 * cluster. node-redis' `connect()` asks one root node, picked at random, for
 * the slot table, and waits on it for as long as it does not answer. A read
 * connection opened again because its node went silent and failed over
 * (loops.ts, the watch of blocked reads) kept the user's root nodes, among
 * them often that silent node: one attempt in three (three root nodes) hung
 * until the 10 s open deadline, and a sink's reads of the slot stayed away
 * for 25 s and more (clean-clone CI, clusterFailoverReads, node-redis). It
 * discovers through the others instead, and through the masters the user's
 * client knows now, never through that node.
 */

/** A node-redis root node: a URL, or socket options. */
type RootNode = { readonly url?: unknown; readonly socket?: { readonly host?: unknown; readonly port?: unknown } };

/** The `host:port` of root node `n`, as node-redis spells a node's address; undefined when unknown. */
function addressOf(n: RootNode): string | undefined {
  if (typeof n.url === 'string') {
    try {
      const u = new URL(n.url);
      return `${u.hostname.replace(/^\[|\]$/g, '')}:${u.port || '6379'}`;
    } catch {
      return undefined;
    }
  }
  const host = n.socket?.host ?? 'localhost';
  return `${String(host)}:${String(n.socket?.port ?? 6379)}`;
}

/**
 * The root nodes of a new connection that must not discover the cluster
 * through `avoid` (`host:port`): the user's root nodes but that one, after
 * the masters the user's client knows now (`masters`, node-redis'
 * `cluster.masters`: they have the slot table too). Undefined when none is
 * left: the user's own are used as they are.
 */
export function rootNodesAvoiding(rootNodes: unknown, masters: unknown, avoid: string): RootNode[] | undefined {
  const roots = (Array.isArray(rootNodes) ? rootNodes : []) as RootNode[];
  const kept = roots.filter((n) => addressOf(n) !== avoid);
  const known = new Set(kept.map(addressOf));
  const live: RootNode[] = [];
  for (const m of Array.isArray(masters) ? (masters as Array<{ host?: unknown; port?: unknown }>) : []) {
    if (typeof m?.host !== 'string' || typeof m.port !== 'number') continue;
    const address = `${m.host}:${m.port}`;
    if (address === avoid || known.has(address)) continue;
    known.add(address);
    live.push({ socket: { host: m.host, port: m.port } });
  }
  const out = [...live, ...kept];
  return out.length > 0 ? out : undefined;
}

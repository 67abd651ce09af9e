// Target: our cache node on Deno (the same program as on Node; see node.ts).
import { startCacheNode } from "./node.ts";

export const startDeno = (work: string) => startCacheNode("deno", work);

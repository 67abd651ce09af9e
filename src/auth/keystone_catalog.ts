// [keystone_authtoken] interface and region_name: which identity endpoint of the node's service catalog validates tokens.

/** A service catalog entry of a Keystone v3 token. */
export interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region?: string | null; region_id?: string | null; url: string }[];
}

/**
 * The v3 base URL of the identity endpoint with this interface (and region), as keystonemiddleware picks
 * Keystone's for validation; undefined when the catalog has none.
 */
export function identityEndpoint(
  catalog: CatalogEntry[] | undefined,
  iface: string | undefined,
  region: string | undefined,
): string | undefined {
  const endpoints = (catalog ?? []).filter((e) => e.type === "identity").flatMap((e) => e.endpoints);
  const hit = endpoints.find((e) =>
    (!iface || e.interface === iface) && (!region || e.region_id === region || e.region === region)
  );
  return hit && `${hit.url.replace(/\/+$/, "").replace(/\/v3$/, "")}/v3`;
}

/** interface and region_name: the catalog's identity endpoint, else `fallback` (auth_url's) with a WARNING line. */
export function validationEndpoint(
  catalog: CatalogEntry[] | undefined,
  opts: { interface?: string; regionName?: string },
  fallback: string,
  log: (level: "WARNING", message: string) => void,
): string {
  const found = identityEndpoint(catalog, opts.interface, opts.regionName);
  if (found) return found;
  const where = `no ${opts.interface ?? "any"} identity endpoint in region ${opts.regionName ?? "(any)"}`;
  log("WARNING", `${where} in the catalog: validating tokens at ${fallback}`);
  return fallback;
}

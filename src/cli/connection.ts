// Where the CLI talks to and with which token: flags, else a clouds.yaml cloud or OS_* variables; a token or a
// Keystone password login.
import { clientFetch, type Fetch } from "../platform/tls_fetch.ts";
import { type CloudSettings, readCloud } from "./clouds.ts";
import { CliError } from "./errors.ts";

/** The global --os-* options as commander names them; each falls back to its OS_* variable. */
export interface AuthFlags {
  osCloud?: string;
  osImageUrl?: string;
  osAuthToken?: string;
  osAuthUrl?: string;
  osUsername?: string;
  osPassword?: string;
  osProjectName?: string;
  osUserDomainName?: string;
  osProjectDomainName?: string;
  osRegionName?: string;
  osInterface?: string;
  /** A PEM CA bundle for https URLs (glanceclient's --os-cacert, OS_CACERT). */
  osCacert?: string;
  /** Do not verify https certificates (glanceclient's --insecure). */
  insecure?: boolean;
}

/** Where the commands send their requests, and with which token. */
export interface Connection {
  /** The node's root URL, without a trailing /v2. */
  imageUrl: string;
  /** Sent as X-Auth-Token; undefined sends none (a noauth node). */
  token: string | undefined;
  /** What requests go out with: node:https with --os-cacert (or --insecure) for https URLs; default global fetch. */
  send?: Fetch;
}

/** What glanceclient would use when nothing names a node: the node started by `npm start` on this host. */
export const DEFAULT_IMAGE_URL = "http://127.0.0.1:9292";

/**
 * The node and the token, from flags, else the cloud --os-cloud or OS_CLOUD names in clouds.yaml (then no other
 * OS_* variable is read: the cloud entry is the configuration, as openstacksdk has it), else OS_* variables: a
 * token (or no Keystone at all) is used as is, else a password login whose catalog names the node unless an image
 * URL (or the cloud's image_endpoint_override) does. A CliError when that fails.
 */
export async function connect(flags: AuthFlags, env: Record<string, string | undefined>): Promise<Connection> {
  const cloudName = flags.osCloud ?? (env.OS_CLOUD || undefined);
  const cloud = cloudName ? await readCloud(cloudName, env) : undefined;
  const fromEnv = (name: string) => (cloud ? undefined : env[name] || undefined);
  const pick = (flag: string | undefined, key: keyof CloudSettings | undefined, name: string) =>
    flag ?? (key && cloud?.[key]) ?? fromEnv(name);
  const imageUrl = pick(flags.osImageUrl, "imageUrl", "OS_IMAGE_URL");
  const token = pick(flags.osAuthToken, "token", "OS_AUTH_TOKEN") ?? fromEnv("OS_TOKEN");
  const authUrl = pick(flags.osAuthUrl, "authUrl", "OS_AUTH_URL");
  let send: Fetch;
  try {
    send = clientFetch({ caFile: pick(flags.osCacert, undefined, "OS_CACERT"), insecure: flags.insecure });
  } catch (err) {
    throw new CliError(`--os-cacert: ${(err as Error).message}`);
  }
  if (token || !authUrl) return { imageUrl: rootOf(imageUrl ?? DEFAULT_IMAGE_URL), token, send };

  const where = cloudName ? ` (cloud ${cloudName})` : "";
  const projectName = pick(flags.osProjectName, "projectName", "OS_PROJECT_NAME");
  const projectId = flags.osProjectName ? undefined : (cloud?.projectId ?? fromEnv("OS_PROJECT_ID"));
  const domain = (flag: string | undefined, name: "user" | "project") => {
    const upper = name.toUpperCase();
    const byName = pick(flag, `${name}DomainName`, `OS_${upper}_DOMAIN_NAME`);
    const byId = flag ? undefined : (cloud?.[`${name}DomainId`] ?? fromEnv(`OS_${upper}_DOMAIN_ID`));
    return byName ? { name: byName } : byId ? { id: byId } : { name: "Default" };
  };
  const login = await passwordLogin(send, authUrl, {
    username: required(pick(flags.osUsername, "username", "OS_USERNAME"), `--os-username or OS_USERNAME${where}`),
    password: required(pick(flags.osPassword, "password", "OS_PASSWORD"), `--os-password or OS_PASSWORD${where}`),
    project: projectId && !projectName
      ? { id: projectId }
      : { name: required(projectName, `--os-project-name or OS_PROJECT_NAME${where}`) },
    userDomain: domain(flags.osUserDomainName, "user"),
    projectDomain: domain(flags.osProjectDomainName, "project"),
  });
  const endpoint = imageUrl ??
    imageEndpoint(
      login.catalog,
      pick(flags.osInterface, "interface", "OS_INTERFACE") ?? "public",
      pick(flags.osRegionName, "regionName", "OS_REGION_NAME"),
    );
  return { imageUrl: rootOf(endpoint), token: login.token, send };
}

/** A Keystone name or id (a domain, a project). */
type NameOrId = { name: string } | { id: string };

interface Credentials {
  username: string;
  password: string;
  project: NameOrId;
  userDomain: NameOrId;
  projectDomain: NameOrId;
}

interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region?: string; region_id?: string; url: string }[];
}

/** POST /v3/auth/tokens with a password, scoped to a project: the token and the service catalog. */
async function passwordLogin(
  send: Fetch,
  authUrl: string,
  c: Credentials,
): Promise<{ token: string; catalog: CatalogEntry[] }> {
  const base = authUrl.replace(/\/+$/, "");
  const url = `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`;
  const body = {
    auth: {
      identity: {
        methods: ["password"],
        password: { user: { name: c.username, domain: c.userDomain, password: c.password } },
      },
      scope: { project: "id" in c.project ? c.project : { ...c.project, domain: c.projectDomain } },
    },
  };
  let res: Response;
  try {
    res = await send(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new CliError(`Keystone at ${authUrl} cannot be reached: ${causeOf(err)}`);
  }
  const text = await res.text();
  const token = res.headers.get("x-subject-token");
  if (res.status !== 201 || !token) {
    let why = text.slice(0, 200);
    try {
      why = JSON.parse(text).error?.message ?? why;
    } catch { /* not JSON */ }
    throw new CliError(`Keystone login as ${c.username} failed: ${res.status} ${why}`.trim());
  }
  return { token, catalog: (JSON.parse(text).token?.catalog ?? []) as CatalogEntry[] };
}

function imageEndpoint(catalog: CatalogEntry[], iface: string, region: string | undefined): string {
  const wanted = iface.replace(/URL$/, "");
  for (const service of catalog) {
    if (service.type !== "image") continue;
    const hit = service.endpoints.find(
      (e) => e.interface === wanted && (!region || e.region === region || e.region_id === region),
    );
    if (hit) return hit.url;
  }
  throw new CliError(
    `the service catalog has no ${wanted} image endpoint${region ? ` in ${region}` : ""}; give --os-image-url`,
  );
}

function rootOf(url: string): string {
  try {
    new URL(url);
  } catch {
    throw new CliError(`not a URL: ${url}`);
  }
  return url.replace(/\/+$/, "").replace(/\/v2(\.\d+)?$/, "");
}

function required(v: string | undefined, what: string): string {
  if (!v) throw new CliError(`a Keystone login needs ${what}`);
  return v;
}

/** Why a fetch failed, in a word (Node hides ECONNREFUSED and the like in err.cause). */
export function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

// clouds.yaml, as every OpenStack client reads it: the named cloud's auth, region, interface and image endpoint.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import { CliError } from "./errors.ts";

/** What a cloud entry gives the CLI; each field is absent when the entry does not set it. */
export interface CloudSettings {
  authUrl?: string;
  token?: string;
  username?: string;
  password?: string;
  projectName?: string;
  projectId?: string;
  userDomainName?: string;
  userDomainId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  regionName?: string;
  interface?: string;
  /** image_endpoint_override: the node's URL, instead of the catalog's image endpoint. */
  imageUrl?: string;
}

/**
 * Where clouds.yaml is looked for, first found wins: OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
 * ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml (openstacksdk's order).
 */
export function cloudsYamlPaths(env: Record<string, string | undefined>, file = "clouds.yaml"): string[] {
  const home = env.HOME || process.env.HOME || "";
  const paths = [join(process.cwd(), file)];
  if (home) paths.push(join(home, ".config", "openstack", file));
  paths.push(join("/etc/openstack", file));
  const named = file === "clouds.yaml" ? env.OS_CLIENT_CONFIG_FILE : env.OS_CLIENT_SECURE_FILE;
  return named ? [named, ...paths] : paths;
}

/** The first of `paths` that can be read, parsed; undefined when none can. */
async function firstYaml(paths: string[]): Promise<{ path: string; doc: unknown } | undefined> {
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch {
      continue;
    }
    try {
      return { path, doc: parseYaml(text) };
    } catch (err) {
      throw new CliError(`${path}: not YAML: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return undefined;
}

const cloudIn = (doc: unknown, name: string): Record<string, unknown> | undefined => {
  const clouds = (doc as { clouds?: Record<string, unknown> } | null)?.clouds;
  const cloud = clouds && typeof clouds === "object" ? clouds[name] : undefined;
  return cloud && typeof cloud === "object" ? cloud as Record<string, unknown> : undefined;
};

/**
 * The named cloud from the first clouds.yaml on the search path, with what the first secure.yaml (same search
 * path, or OS_CLIENT_SECURE_FILE) says of it merged in (passwords kept apart); a CliError naming what is missing.
 */
export async function readCloud(name: string, env: Record<string, string | undefined>): Promise<CloudSettings> {
  const paths = cloudsYamlPaths(env);
  const found = await firstYaml(paths);
  if (!found) throw new CliError(`cloud ${name}: no clouds.yaml found (looked in ${paths.join(", ")})`);
  const cloud = cloudIn(found.doc, name);
  if (!cloud) throw new CliError(`${found.path} has no cloud named ${name}`);
  const secure = cloudIn((await firstYaml(cloudsYamlPaths(env, "secure.yaml")))?.doc, name) ?? {};
  const auth = { ...(cloud.auth as object ?? {}), ...(secure.auth as object ?? {}) };
  return settingsOf({ ...cloud, ...secure, auth });
}

function settingsOf(cloud: Record<string, unknown>): CloudSettings {
  const auth = (typeof cloud.auth === "object" && cloud.auth ? cloud.auth : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : typeof v === "number" ? String(v) : undefined);
  // domain_name/domain_id stand for both the user's and the project's domain where those are not given
  const domainName = str(auth.domain_name) ?? str(auth.default_domain_name);
  const domainId = str(auth.domain_id) ?? str(auth.default_domain_id);
  return {
    authUrl: str(auth.auth_url),
    token: str(auth.token),
    username: str(auth.username),
    password: str(auth.password),
    projectName: str(auth.project_name) ?? str(auth.tenant_name),
    projectId: str(auth.project_id) ?? str(auth.tenant_id),
    userDomainName: str(auth.user_domain_name) ?? domainName,
    userDomainId: str(auth.user_domain_id) ?? domainId,
    projectDomainName: str(auth.project_domain_name) ?? domainName,
    projectDomainId: str(auth.project_domain_id) ?? domainId,
    regionName: str(cloud.region_name),
    interface: str(cloud.interface),
    imageUrl: str(cloud.image_endpoint_override),
  };
}

// A devstack-style glance-api.conf: Glance's and its libraries' sections as devstack writes them, plus the node's own.

/** Where the node's parts go, and the e2e setup's Keystone and Glance (readEnv()). */
export interface DevstackPlaces {
  env: Record<string, string>;
  port: number;
  dataDir: string;
  logFile: string;
  /** Extra lines for [glance_cache_node]. */
  own?: string;
  /** memcached_servers of [keystone_authtoken] (default: a devstack-like address nothing listens on is not used). */
  memcachedServers?: string;
}

/**
 * glance-api.conf as devstack writes it (many sections the node does not use), with the node's upstream_url
 * in [glance_cache_node] and its service user in [keystone_authtoken].
 */
export function devstackGlanceApiConf(p: DevstackPlaces): string {
  const { env } = p;
  const keystoneRoot = env.KEYSTONE_URL.replace(/\/v3\/?$/, "");
  return `[DEFAULT]
logging_exception_prefix = ERROR %(name)s %(instance)s
logging_default_format_string = %(color)s%(levelname)s %(name)s [-%(color)s] %(instance)s%(color)s%(message)s
logging_context_format_string = %(color)s%(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(project_name)s %(user_name)s%(color)s] %(instance)s%(color)s%(message)s
logging_debug_format_suffix = {{(pid=%(process)d) %(funcName)s %(pathname)s:%(lineno)d}}
debug = True
use_syslog = False
log_file = ${p.logFile}
bind_host = 127.0.0.1
bind_port = ${p.port}
workers = 1
enabled_backends = fast:file,cheap:file
image_cache_driver = sqlite
image_cache_dir = ${p.dataDir}/image-cache
image_cache_max_size = 10737418240
image_cache_stall_time = 86400
transport_url = rabbit://stackrabbit:secret@127.0.0.1:5672/
auth_strategy = keystone
show_image_direct_url = True
show_multiple_locations = True
enable_v1_api = False
enabled_import_methods = [ "glance-direct", "web-download", "copy-image" ]
node_staging_uri = file:///opt/stack/data/glance/staging
image_member_quota = 128
use_keystone_limits = True
lock_path = /opt/stack/data/glance/locks

[database]
connection = mysql+pymysql://root:secret@127.0.0.1/glance?charset=utf8
max_retries = -1

[oslo_concurrency]
lock_path = /opt/stack/data/glance/locks

[oslo_messaging_notifications]
driver = messagingv2

[oslo_messaging_rabbit]
rabbit_retry_interval = 1
heartbeat_timeout_threshold = 60

[paste_deploy]
flavor = keystone

[glance_store]
default_backend = fast
stores = file, http

[fast]
filesystem_store_datadir = /opt/stack/data/glance/images/

[cheap]
filesystem_store_datadir = /opt/stack/data/glance/cheap_images/

[os_glance_staging_store]
filesystem_store_datadir = /opt/stack/data/glance/os_glance_staging_store/

[os_glance_tasks_store]
filesystem_store_datadir = /opt/stack/data/glance/os_glance_tasks_store/

[keystone_authtoken]
memcached_servers = ${p.memcachedServers ?? ""}
project_domain_name = ${env.DOMAIN}
project_name = ${env.SERVICE_PROJECT}
user_domain_name = ${env.DOMAIN}
password = ${env.SERVICE_PASSWORD}
username = ${env.SERVICE_USER}
auth_url = ${keystoneRoot}
interface = public
auth_type = password
region_name = ${env.REGION}
service_token_roles_required = True
www_authenticate_uri = ${keystoneRoot}/identity

[oslo_policy]
enforce_scope = False
enforce_new_defaults = False

[oslo_middleware]
enable_proxy_headers_parsing = True

[cors]
allowed_origin = http://127.0.0.1

[profiler]
enabled = False
trace_sqlalchemy = False

[key_manager]
backend = barbican

[barbican]
barbican_endpoint_type = internal

[oslo_limit]
auth_url = ${keystoneRoot}
system_scope = all
endpoint_id = 0123456789abcdef0123456789abcdef
username = glance
password = secret
user_domain_id = default
auth_type = password

[wsgi]
python_interpreter = /usr/bin/python3

[glance_cache_node]
upstream_url = ${env.GLANCE_URL}
data_dir = ${p.dataDir}
${p.own ?? ""}
`;
}

/*
 * schema: the SQL of every schema version (see schema.h).
 *
 * Version 1 holds the configuration. Proxies and registries share one name
 * space (include/upstreamfs/configdb.h); configdb checks that inside its write transaction and
 * the triggers below refuse a clash from any other writer too. Secrets are
 * never stored here (configdb keeps them in files), so no column holds one.
 * config_generation is bumped by triggers on every change of the config
 * tables, so a reader in another process can tell that something changed
 * with one cheap SELECT.
 *
 * To add a version, append a string to the array; the count follows.
 */
#include "upstreamfs/schema.h"
#include "upstreamfs/index.h"

const char *const state_migrations[] = {
    /* 0 -> 1: configuration. */
    "CREATE TABLE proxies ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL CHECK (type IN "
    "    ('docker','ecr','helm','maven','npm','pypi','generic')),"
    "  source TEXT CHECK (source IN ('dockerhub','custom')),"
    "  url TEXT NOT NULL,"
    "  auth TEXT NOT NULL CHECK (auth IN ('anonymous','access-key','aws-chain')),"
    "  access_key TEXT,"
    "  aws_endpoint TEXT,"
    "  ca_file TEXT,"
    "  client_cert TEXT,"
    "  client_key TEXT,"
    "  http_proxy TEXT,"
    "  metadata_ttl INTEGER NOT NULL CHECK (metadata_ttl >= 0),"
    "  negative_ttl INTEGER NOT NULL CHECK (negative_ttl >= 0),"
    "  offline INTEGER NOT NULL DEFAULT 0 CHECK (offline IN (0, 1)),"
    "  include_json TEXT NOT NULL DEFAULT '[]',"
    "  exclude_json TEXT NOT NULL DEFAULT '[]',"
    "  ecr_host TEXT,"
    "  ecr_region TEXT,"
    "  ecr_account TEXT,"
    "  ecr_alias TEXT,"
    "  ecr_repository TEXT,"
    "  ecr_public INTEGER NOT NULL DEFAULT 0 CHECK (ecr_public IN (0, 1))"
    ");"
    "CREATE TABLE registries ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL CHECK (type IN "
    "    ('docker','helm','maven','npm','pypi','generic'))"
    ");"
    "CREATE TABLE registry_upstreams ("
    "  registry TEXT NOT NULL REFERENCES registries(name) ON DELETE CASCADE ON UPDATE CASCADE,"
    "  position INTEGER NOT NULL CHECK (position >= 0),"
    "  proxy TEXT NOT NULL REFERENCES proxies(key) ON DELETE RESTRICT ON UPDATE CASCADE,"
    "  PRIMARY KEY (registry, position),"
    "  UNIQUE (registry, proxy)"
    ");"
    "CREATE INDEX registry_upstreams_proxy ON registry_upstreams(proxy);"
    "CREATE TABLE config_generation ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  value INTEGER NOT NULL"
    ");"
    "INSERT INTO config_generation (id, value) VALUES (1, 0);"
    "CREATE TRIGGER proxies_name_clash BEFORE INSERT ON proxies"
    "  WHEN EXISTS (SELECT 1 FROM registries WHERE name = NEW.key)"
    "  BEGIN SELECT RAISE(ABORT, 'name is taken by a registry'); END;"
    "CREATE TRIGGER registries_name_clash BEFORE INSERT ON registries"
    "  WHEN EXISTS (SELECT 1 FROM proxies WHERE key = NEW.name)"
    "  BEGIN SELECT RAISE(ABORT, 'name is taken by a proxy'); END;"
    "CREATE TRIGGER proxies_gen_i AFTER INSERT ON proxies"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER proxies_gen_u AFTER UPDATE ON proxies"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER proxies_gen_d AFTER DELETE ON proxies"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER registries_gen_i AFTER INSERT ON registries"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER registries_gen_u AFTER UPDATE ON registries"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER registries_gen_d AFTER DELETE ON registries"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER upstreams_gen_i AFTER INSERT ON registry_upstreams"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;"
    "CREATE TRIGGER upstreams_gen_d AFTER DELETE ON registry_upstreams"
    "  BEGIN UPDATE config_generation SET value = value + 1; END;",
    /* 1 -> 2: the cache: nodes of the mount and objects of the store (index.c). */
    index_schema_sql,
    /* 2 -> 3: settings a running daemon publishes for other processes (its quota). */
    "CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /*
     * 3 -> 4: running totals of the objects (index_objects.c), one row per value of
     * object.local, kept by triggers in the transaction that changes an object, so reading
     * them costs one row; initialised from the rows already there.
     */
    "CREATE TABLE object_totals ("
    "  local INTEGER PRIMARY KEY CHECK (local IN (0, 1)),"
    "  bytes INTEGER NOT NULL,"
    "  count INTEGER NOT NULL"
    ");"
    "INSERT INTO object_totals (local, bytes, count)"
    "  SELECT 0, COALESCE(SUM(size), 0), COUNT(*) FROM object WHERE local = 0;"
    "INSERT INTO object_totals (local, bytes, count)"
    "  SELECT 1, COALESCE(SUM(size), 0), COUNT(*) FROM object WHERE local != 0;"
    "CREATE TRIGGER object_totals_i AFTER INSERT ON object BEGIN"
    "  UPDATE object_totals SET bytes = bytes + NEW.size, count = count + 1"
    "    WHERE local = (NEW.local != 0);"
    "END;"
    "CREATE TRIGGER object_totals_d AFTER DELETE ON object BEGIN"
    "  UPDATE object_totals SET bytes = bytes - OLD.size, count = count - 1"
    "    WHERE local = (OLD.local != 0);"
    "END;"
    "CREATE TRIGGER object_totals_u AFTER UPDATE OF size, local ON object BEGIN"
    "  UPDATE object_totals SET bytes = bytes - OLD.size, count = count - 1"
    "    WHERE local = (OLD.local != 0);"
    "  UPDATE object_totals SET bytes = bytes + NEW.size, count = count + 1"
    "    WHERE local = (NEW.local != 0);"
    "END;",
    /*
     * 4 -> 5: node inode numbers are never reused. A plain INTEGER PRIMARY KEY hands the
     * highest rowid out again once its row is deleted, while the kernel may still hold the
     * old number (entry timeouts, NFS export): AUTOINCREMENT never gives a number twice.
     * The table is rebuilt with the same columns and rows; sqlite_sequence starts at the
     * highest inode present.
     */
    "CREATE TABLE node_v5("
    " ino INTEGER PRIMARY KEY AUTOINCREMENT,"
    " parent INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " top TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT -1,"
    " mtime INTEGER NOT NULL DEFAULT 0,"
    " digest TEXT,"
    " expect TEXT,"
    " url TEXT,"
    " mutable INTEGER NOT NULL DEFAULT 0,"
    " etag TEXT,"
    " last_modified TEXT,"
    " checked INTEGER NOT NULL DEFAULT 0,"
    " neg_until INTEGER NOT NULL DEFAULT 0,"
    " listed INTEGER NOT NULL DEFAULT 0,"
    " stale INTEGER NOT NULL DEFAULT 0,"
    " local INTEGER NOT NULL DEFAULT 0,"
    " via TEXT,"
    " ctype TEXT,"
    " UNIQUE(parent, name));"
    "INSERT INTO node_v5 SELECT ino, parent, name, top, path, kind, size, mtime, digest, expect,"
    " url, mutable, etag, last_modified, checked, neg_until, listed, stale, local, via, ctype"
    " FROM node;"
    "DROP TABLE node;"
    "ALTER TABLE node_v5 RENAME TO node;"
    "CREATE INDEX node_top_path ON node(top, path);"
    "CREATE INDEX node_digest ON node(digest);",
    /* 5 -> 6: which proxy obtained each object from where (index_scope.c, docs/SECURITY.md). */
    "CREATE TABLE object_scope ("
    "  digest TEXT NOT NULL, top TEXT NOT NULL, repo TEXT NOT NULL,"
    "  PRIMARY KEY (digest, top, repo)) WITHOUT ROWID;"
    /* An evicted object is fetched again by whoever needs it: its scopes go with it. */
    "CREATE TRIGGER object_scope_gone AFTER DELETE ON object BEGIN"
    "  DELETE FROM object_scope WHERE digest = OLD.digest;"
    "END;",
    /*
     * 6 -> 7: cached entries (a tarball, a file, a tag) that a revalidated document of their
     * upstream no longer lists (src/index/index_removed.c, src/engine/removals.c). A mark
     * goes with its node.
     */
    "CREATE TABLE removed_upstream ("
    "  top TEXT NOT NULL, path TEXT NOT NULL, since INTEGER NOT NULL,"
    "  PRIMARY KEY (top, path)) WITHOUT ROWID;"
    "CREATE TRIGGER removed_upstream_gone AFTER DELETE ON node BEGIN"
    "  DELETE FROM removed_upstream WHERE top = OLD.top AND path = OLD.path;"
    "END;",
    /*
     * 7 -> 8: partial objects (src/index/index_partial.c, src/fetch/lazy.c): per flight key
     * (key: the sha256 hex that names STATEDIR/partial/<key>), the map of present chunks
     * (bit i of byte i / 8: chunk i) with the validators its chunks came with, so a restart
     * resumes it. Before, the map was a sidecar file partial/<key>.map (imported once at a
     * start: src/fetch/partial.c).
     */
    "CREATE TABLE partial ("
    "  key TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
    "  size INTEGER NOT NULL CHECK (size > 0), chunk INTEGER NOT NULL CHECK (chunk > 0),"
    "  etag TEXT, last_modified TEXT, map BLOB NOT NULL,"
    "  present INTEGER NOT NULL CHECK (present >= 0), updated INTEGER NOT NULL);"
    "CREATE INDEX partial_updated ON partial(updated);",
};

const int state_migration_count = (int)(sizeof(state_migrations) / sizeof(state_migrations[0]));

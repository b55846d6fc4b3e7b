'use strict';
// TLS-only Redis deployments for tests (test/tls-topologies.test.js), on free loopback ports below
// the ephemeral range, with certificates made at test time by openssl (no system CA knows them):
//
//   const certs = makeCerts();
//     certs.ca / certs.caFile              // the throwaway CA (PEM text / absolute path)
//     certs.certFile / certs.keyFile       // server certificate, SAN IP:127.0.0.1, DNS:localhost
//     certs.wrong                          // { certFile, keyFile, caFile, ca }: a certificate of the
//                                          // same CA whose only SAN is DNS:wrong.example
//   const cluster = await startTlsCluster(certs);   // 3 primaries, no replica (helpers/redis-cluster.js)
//     cluster.url      // 'rediss+cluster://127.0.0.1:p1,...'; cluster.ports, cluster.command(port, args)
//   const dep = await startTlsSentinel(certs, { plainSentinelPorts: true });   // helpers/sentinel.js
//     dep.url          // 'rediss+sentinel://127.0.0.1:s1,.../mymaster'; dep.plainSentinelUrl
//   const wrong = await startTlsServer(certs.wrong); // one standalone TLS-only redis-server
//     wrong.port, wrong.url ('rediss://127.0.0.1:port'), wrong.command(args), await wrong.stop()
//   await stopAllTls();                              // everything above, temp dirs removed
//
// Every server is TLS-ONLY: `--port 0 --tls-port P` (sentinels: `port 0`, `tls-port P`), with
// `--tls-auth-clients no` (no client certificate asked), and talks TLS to the others too: cluster
// bus and replication (`--tls-cluster yes --tls-replication yes`), sentinels to the data nodes and
// to each other (`tls-replication yes` in their config). A client speaking plaintext to any of
// them gets no reply at all. The admin commands of these helpers speak TLS and verify the
// certificate with the CA (helpers/redis-process.js `command(..., { tls: { ca } })`).
//
// What needs killing is SIGKILLed, and the temp dirs removed, when the test process exits or gets
// SIGINT/SIGTERM/SIGHUP (helpers/redis-process.js) if the test's own cleanup did not run.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { RedisProcess, answersPing, freePort, redisCommand, tempDir, removeDir, tlsServerArgs } = require('./redis-process');
const { startRedisCluster } = require('./redis-cluster');
const { startSentinelDeployment } = require('./sentinel');

/** Standalone TLS servers: apart from tls.test.js's (6400..6499) and the other helpers' ranges. */
const STANDALONE_RANGE = [16600, 16699];

const live = { certDirs: new Set(), clusters: new Set(), sentinels: new Set(), servers: new Set() };

// -------------------------------------------------------------------------------------------------
// Certificates

/**
 * A throwaway CA and two server certificates signed by it, in a new temp dir (see the file
 * comment). RSA 2048, valid 2 days; the server certificates are X.509 v3 leaves
 * (basicConstraints CA:FALSE, serverAuth + clientAuth, since the nodes also present them as
 * clients on the cluster bus and to replicate).
 */
function makeCerts() {
  const dir = tempDir('sio-tls-certs-');
  live.certDirs.add(dir);
  const openssl = (...args) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    } catch (err) {
      throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr ? err.stderr.toString() : err.message}`);
    }
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=sioadapter TLS topologies test CA');
  const leaf = (name, cn, san) => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${san}`,
      '',
    ].join('\n'));
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  leaf('server', '127.0.0.1', 'IP:127.0.0.1,DNS:localhost');
  leaf('wrong', 'wrong.example', 'DNS:wrong.example');
  const caFile = path.join(dir, 'ca.crt');
  const ca = fs.readFileSync(caFile, 'utf8');
  return {
    dir,
    caFile,
    ca,
    certFile: path.join(dir, 'server.crt'),
    keyFile: path.join(dir, 'server.key'),
    wrong: { caFile, ca, certFile: path.join(dir, 'wrong.crt'), keyFile: path.join(dir, 'wrong.key') },
  };
}

// -------------------------------------------------------------------------------------------------
// Deployments

/**
 * A TLS-only Redis Cluster (helpers/redis-cluster.js with `tls`): `nodes` nodes, `replicas` per
 * primary (default 3 primaries, none), waited until cluster_state:ok on every node and all agree.
 */
async function startTlsCluster(certs, { nodes = 3, replicas = 0, ...options } = {}) {
  const cluster = await startRedisCluster({ nodes, replicas, tls: certs, ...options });
  live.clusters.add(cluster);
  return cluster;
}

/**
 * A TLS-only Sentinel deployment (helpers/sentinel.js with `tls`): primary, replica, 3 sentinels,
 * waited until every sentinel names the primary, sees the replica in sync and knows the others.
 */
async function startTlsSentinel(certs, options = {}) {
  const dep = await startSentinelDeployment({ tls: certs, ...options });
  live.sentinels.add(dep);
  return dep;
}

/**
 * One standalone TLS-only redis-server with `certs` (e.g. `certs.wrong`), waited until it answers
 * PING over TLS (the admin connection checks the chain against the CA but not the name, so that
 * the wrong-name certificate can be used).
 */
async function startTlsServer(certs, { label = 'TLS redis-server' } = {}) {
  const dir = tempDir('sio-redis-tls-');
  const port = await freePort(STANDALONE_RANGE);
  const commandOptions = { tls: { ca: certs.ca, checkServerIdentity: () => undefined } };
  const proc = new RedisProcess(label, port, tlsServerArgs(port, dir, certs), { ready: (p) => answersPing(p, commandOptions) });
  const server = {
    port,
    url: `rediss://127.0.0.1:${port}`,
    process: proc,
    command: (args, timeoutMs) => redisCommand(port, args, timeoutMs, commandOptions),
    stop: async () => {
      await proc.stop();
      removeDir(dir);
      live.servers.delete(server);
    },
  };
  live.servers.add(server);
  try {
    await proc.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Stops everything started here and removes the certificates. */
async function stopAllTls() {
  const stops = [
    ...[...live.clusters].map(async (c) => {
      await c.stop();
      live.clusters.delete(c);
    }),
    ...[...live.sentinels].map(async (d) => {
      await d.stop();
      live.sentinels.delete(d);
    }),
    ...[...live.servers].map((s) => s.stop()),
  ];
  const results = await Promise.allSettled(stops);
  for (const dir of live.certDirs) removeDir(dir);
  live.certDirs.clear();
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

module.exports = { makeCerts, startTlsCluster, startTlsSentinel, startTlsServer, stopAllTls };

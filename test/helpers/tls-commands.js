'use strict';
// Server commands for test/tls-topologies.test.js (config `commandModules`, see helpers/server.js).
// Loaded before the adapter is made, so that the process warnings it emits (e.g. SIO_TLS_INSECURE
// when certificate verification is turned off) are all recorded here.

const warnings = [];
process.on('warning', (w) => warnings.push({ name: w.name, code: w.code === undefined ? null : w.code, message: w.message }));

module.exports = {
  // Every process warning since the server started: [{ name, code, message }].
  processWarnings: () => warnings,
};

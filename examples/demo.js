"use strict";
// Two socket.io servers, each in its own process, both using sioadapter on the same Redis.
// A client connects to each; server A broadcasts with io.emit(); both clients print it.
// Run: bash examples/demo.sh (or node examples/demo.js with REDIS_URL set and the addon built).

const { fork } = require("child_process");
const path = require("path");

const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const key = process.env.DEMO_KEY || `demo-${process.pid}`;

if (process.argv[2] === "server") {
  runServer(process.argv[3]);
} else {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

function runServer(name) {
  const http = require("http");
  const { Server } = require("socket.io");
  const { createAdapter } = require("../npm");
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createAdapter(redisUrl, { key }));
  io.of("/").adapter.on("error", (err) => console.error(`[server ${name}] adapter error: ${err.message}`));
  io.on("connection", (socket) => console.log(`[server ${name}] client ${socket.id} connected`));
  httpServer.listen(0, "127.0.0.1", async () => {
    await io.of("/").adapter.ready;
    const { port } = httpServer.address();
    console.log(`[server ${name}] pid ${process.pid} listening on 127.0.0.1:${port}, adapter uid ${io.of("/").adapter.uid}`);
    process.send({ type: "ready", port });
  });
  process.on("message", (msg) => {
    if (msg.type === "broadcast") {
      console.log(`[server ${name}] io.emit("news", ${JSON.stringify(msg.text)})`);
      io.emit("news", msg.text, { from: name, at: new Date().toISOString() });
    } else if (msg.type === "stop") {
      io.close(() => process.exit(0));
    }
  });
}

function startServer(name) {
  const child = fork(__filename, ["server", name], { env: { ...process.env, REDIS_URL: redisUrl, DEMO_KEY: key } });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`server ${name} exited early (${code})`)));
    child.on("message", (msg) => msg.type === "ready" && resolve({ child, port: msg.port }));
  });
}

function connectClient(name, port) {
  const { io } = require("socket.io-client");
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
  return new Promise((resolve) => socket.on("connect", () => resolve(socket)));
}

async function main() {
  console.log(`Redis: ${redisUrl}, key prefix "${key}"`);
  const a = await startServer("A");
  const b = await startServer("B");
  const clients = [await connectClient("A", a.port), await connectClient("B", b.port)];
  const received = clients.map((socket, i) => {
    const name = i === 0 ? "A" : "B";
    return new Promise((resolve) =>
      socket.once("news", (text, meta) => {
        console.log(`[client of server ${name}] received "news": ${JSON.stringify(text)} from server ${meta.from}`);
        resolve();
      }),
    );
  });
  a.child.send({ type: "broadcast", text: "hello from server A, through Redis" });
  const timeout = setTimeout(() => {
    console.error("Timed out: the broadcast did not reach both clients.");
    process.exit(1);
  }, 10000);
  await Promise.all(received);
  clearTimeout(timeout);
  console.log("Both clients got the broadcast: it crossed from process A to process B through Redis.");
  for (const s of clients) s.close();
  for (const { child } of [a, b]) {
    child.removeAllListeners("exit");
    child.send({ type: "stop" });
  }
}

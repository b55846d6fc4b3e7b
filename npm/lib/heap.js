"use strict";
// Giving memory back once a heavy stretch of traffic is over (option `releaseMemoryWhenIdle`).
//
// A node that received many MiB of broadcasts keeps them long after they were delivered: as
// garbage in V8's heap (the messages, socket.io's packets, ws's frames), which V8 collects only
// when it next needs room, and then as free pages in the allocator's heaps, which glibc keeps.
// Measured (bench, receiving node after 130 MB of broadcasts to 10 clients): 310 MiB RSS, of
// which 104 MiB V8 garbage and ~100 MiB free allocator pages; 70 MiB after a collection and a
// trim. So once RELEASE_AFTER_BYTES have come in since the last release and a second passes with
// less than QUIET_BYTES_PER_WINDOW, this runs one full V8 collection (what `--expose-gc`'s `gc()`
// runs) and has the addon return the allocator's free pages (`malloc_trim`, on a thread of its
// own). A full collection pauses the event loop for as long as marking what is alive takes: a
// few ms on a socket.io node. An application with a large live heap would pay more, so a
// collection that took longer than MAX_PAUSE_MS, of the wall clock and of CPU, ends the
// collections for the process (the trims go on).

const v8 = require("node:v8");
const vm = require("node:vm");
const { performance } = require("node:perf_hooks");
const native = require("./native");
const { debug } = require("./log");

/** Bytes received since the last release that make the next quiet second release memory. */
const RELEASE_AFTER_BYTES = 4 << 20;
/** Length of the windows in which traffic is measured. */
const WINDOW_MS = 1000;
/** A window with less than this received is quiet. */
const QUIET_BYTES_PER_WINDOW = 256 << 10;
/** How long after the collection the allocator's heaps are trimmed. */
const TRIM_DELAY_MS = 250;
/** A full collection that took longer than this is the last one. */
const MAX_PAUSE_MS = 50;

/** Bytes received since the last release, and in the current window. */
let sinceRelease = 0;
let inWindow = 0;
/** The window timer, while a release is due. */
let timer = null;
/** V8's full collection: undefined until looked up, null when unavailable or retired. */
let collect;

/** `gc()`: the process's own (`--expose-gc`), else one from a context made while the flag is on. */
function fullCollection() {
  if (collect !== undefined) return collect;
  collect = null;
  if (typeof globalThis.gc === "function") {
    collect = globalThis.gc;
  } else {
    try {
      v8.setFlagsFromString("--expose-gc");
      collect = vm.runInNewContext("gc");
    } catch (err) {
      debug("releasing memory: no full collection available (%s); trims only", err.message);
    } finally {
      v8.setFlagsFromString("--no-expose-gc");
    }
  }
  return collect;
}

/** One release: a full collection (while it stays cheap), then a trim of the allocator's heaps. */
function release(received) {
  const gc = fullCollection();
  const before = process.memoryUsage.rss();
  let pause = 0;
  if (gc) {
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    gc();
    pause = performance.now() - start;
    // Judged on the CPU it took, not on the wall clock: on a loaded machine the event loop's
    // thread may simply have waited for a core meanwhile.
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    if (pause > MAX_PAUSE_MS && cpuMs > MAX_PAUSE_MS) {
      collect = null;
      debug("releasing memory: a full collection took %d ms (%d ms of CPU, over %d ms): no more collections, trims only", Math.round(pause), Math.round(cpuMs), MAX_PAUSE_MS);
    }
  }
  // V8 frees dead ArrayBuffers' memory on a thread of its own after the collection: the trim
  // comes once that is done.
  setTimeout(native.releaseFreeMemory, TRIM_DELAY_MS).unref();
  debug("releasing memory after %d MiB received: RSS %d MiB, full collection %s ms", received >> 20, before >> 20, pause.toFixed(1));
}

/** Ends a window: releases when it was quiet, else waits for the next one. */
function endWindow() {
  const busy = inWindow >= QUIET_BYTES_PER_WINDOW;
  inWindow = 0;
  if (busy) return;
  clearInterval(timer);
  timer = null;
  const received = sinceRelease;
  sinceRelease = 0;
  release(received);
}

/** Counts `bytes` received by an adapter with `releaseMemoryWhenIdle`. */
function noteReceived(bytes) {
  sinceRelease += bytes;
  inWindow += bytes;
  if (timer === null && sinceRelease >= RELEASE_AFTER_BYTES) {
    timer = setInterval(endWindow, WINDOW_MS);
    timer.unref();
  }
}

module.exports = { noteReceived };

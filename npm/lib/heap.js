"use strict";
// Giving memory back once a heavy stretch of traffic is over (option `releaseMemoryWhenIdle`).
//
// A node that received many MiB of broadcasts keeps them long after they were delivered: as
// garbage in V8's heap (the messages, socket.io's packets, ws's frames), which V8 collects only
// when it next needs room, and then as free pages in the allocator's heaps, which glibc keeps.
// Measured (bench, receiving node after 130 MB of broadcasts to 10 clients): 310 MiB RSS, of
// which 104 MiB V8 garbage and ~100 MiB free allocator pages; 70 MiB after a collection and a
// trim.
//
// So, after a heavy stretch (RELEASE_AFTER_BYTES received at HEAVY_BYTES_PER_SECOND or more; a
// steady trickle never is one), the first second with less than QUIET_BYTES_PER_WINDOW runs one
// full V8 collection (what `--expose-gc`'s `gc()` runs) and has the addon return the allocator's
// free pages (`malloc_trim`, on a thread of its own), at most once every MIN_INTERVAL_MS. A full
// collection pauses the event loop for as long as marking what is alive takes: a few ms on a
// socket.io node. An application with a large live heap would pay more, so two collections in a
// row that each took over MAX_PAUSE_MS (wall clock and CPU) end the collections for the process
// (the trims go on). Process-wide: one adapter created with `releaseMemoryWhenIdle: false` turns
// the collections off for the whole process.

const v8 = require("node:v8");
const vm = require("node:vm");
const { performance } = require("node:perf_hooks");
const native = require("./native");
const { debug } = require("./log");

/** Bytes of a heavy stretch that make the next quiet second release memory. */
const RELEASE_AFTER_BYTES = 4 << 20;
/** The least average rate at which those bytes came for the stretch to count as heavy. */
const HEAVY_BYTES_PER_SECOND = 256 << 10;
/** Length of the windows in which traffic is measured once a release is due. */
const WINDOW_MS = 1000;
/** A window with less than this received is quiet. */
const QUIET_BYTES_PER_WINDOW = 256 << 10;
/** Least time between two releases. */
const MIN_INTERVAL_MS = 5000;
/** How long after the collection the allocator's heaps are trimmed. */
const TRIM_DELAY_MS = 250;
/** A full collection that took longer than this is slow; two slow ones in a row are the last. */
const MAX_PAUSE_MS = 50;

/** Bytes received since `since` (the last release, or the start of a slow trickle). */
let sinceRelease = 0;
let since = performance.now();
/** Bytes received in the current window, while a release is due. */
let inWindow = 0;
/** The window timer, while a release is due. */
let timer = null;
/** When the last release ran. */
let lastRelease = -Infinity;
/** V8's full collection: undefined until looked up, null when unavailable, retired or vetoed. */
let collect;
/** Slow collections in a row. */
let slow = 0;

/** True when the process was started with `--expose-gc` (its own flag is then left alone). */
function startedWithExposeGc() {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS || "").split(/\s+/)].some((arg) => arg === "--expose-gc" || arg === "--expose_gc");
}

/** `gc()`: the process's own (`--expose-gc`), else one from a context made while the flag is on. */
function fullCollection() {
  if (collect !== undefined) return collect;
  collect = null;
  if (typeof globalThis.gc === "function") {
    collect = globalThis.gc;
  } else if (!startedWithExposeGc()) {
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
  lastRelease = performance.now();
  const gc = fullCollection();
  const before = process.memoryUsage.rss();
  let pause = 0;
  if (gc) {
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    gc();
    pause = performance.now() - start;
    // Judged on the wall clock and on CPU: on a loaded machine the event loop's thread may
    // simply have waited for a core meanwhile (process.cpuUsage counts every thread, hence two
    // slow ones in a row).
    const cpu = process.cpuUsage(cpuBefore);
    slow = pause > MAX_PAUSE_MS && (cpu.user + cpu.system) / 1000 > MAX_PAUSE_MS ? slow + 1 : 0;
    if (slow >= 2) {
      collect = null;
      debug("releasing memory: two full collections in a row took over %d ms (the last %d ms): no more collections, trims only", MAX_PAUSE_MS, Math.round(pause));
    }
  }
  // V8 frees dead ArrayBuffers' memory on a thread of its own after the collection: the trim
  // comes once that is done.
  setTimeout(native.releaseFreeMemory, TRIM_DELAY_MS).unref();
  debug("releasing memory after %d MiB received: RSS %d MiB, full collection %s ms", received >> 20, before >> 20, pause.toFixed(1));
}

/** Ends a window: releases when it was quiet (and the last release is old enough). */
function endWindow() {
  const busy = inWindow >= QUIET_BYTES_PER_WINDOW;
  inWindow = 0;
  if (busy || performance.now() - lastRelease < MIN_INTERVAL_MS) return;
  clearInterval(timer);
  timer = null;
  const received = sinceRelease;
  sinceRelease = 0;
  since = performance.now();
  release(received);
}

/** Counts `bytes` received by an adapter with `releaseMemoryWhenIdle`. */
function noteReceived(bytes) {
  sinceRelease += bytes;
  if (timer !== null) {
    inWindow += bytes;
    return;
  }
  if (sinceRelease < RELEASE_AFTER_BYTES) return;
  const seconds = Math.max(performance.now() - since, 1) / 1000;
  if (sinceRelease / seconds < HEAVY_BYTES_PER_SECOND) {
    // A slow trickle, not a heavy stretch: nothing to give back; count afresh.
    sinceRelease = 0;
    since = performance.now();
    return;
  }
  inWindow = 0;
  timer = setInterval(endWindow, WINDOW_MS);
  timer.unref();
}

/** An adapter made with `releaseMemoryWhenIdle: false`: no forced collections in this process. */
function vetoCollections() {
  if (collect !== null) debug("releasing memory: an adapter has releaseMemoryWhenIdle false: no full collections in this process");
  collect = null;
}

module.exports = { noteReceived, vetoCollections };

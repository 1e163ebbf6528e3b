// wfe's Deno prelude: sets up the `Wfe` global and runs the user's modules.
//
// It is imported by a small per-run entry module written by wfe.yaml._deno.
// The private channel back to Python is a FIFO whose path arrives on stdin.
// Handshake (so user code never sees a path it could write to):
//   1. read the first stdin line: {"channel": "<fifo path>"}
//   2. open the FIFO for writing, send {"t":"ready"}
//   3. Python unlinks the FIFO, then sends the workflow data (JSON) and closes stdin
//   4. read stdin to EOF, install `Wfe`, import the user's modules
// The write handle lives only in this module's closure; user code cannot reach it,
// and by the time user code runs the FIFO no longer has a name. Printing to
// stdout therefore cannot forge outputs.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Captured before any user code runs: patching these prototypes or globals later
// cannot reach the channel handle or change what is sent.
const apply = Reflect.apply;
const fileWriteSync = Deno.FsFile.prototype.writeSync;
const encode = TextEncoder.prototype.encode;
const stringify = JSON.stringify;
const testRegExp = RegExp.prototype.test;
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;

let pending = new Uint8Array(0);
let stdinDone = false;

function readChunk() {
  const buf = new Uint8Array(65536);
  const n = Deno.stdin.readSync(buf);
  if (n === null) {
    stdinDone = true;
    return;
  }
  const merged = new Uint8Array(pending.length + n);
  merged.set(pending, 0);
  merged.set(buf.subarray(0, n), pending.length);
  pending = merged;
}

function readLine() {
  for (;;) {
    const nl = pending.indexOf(10);
    if (nl >= 0) {
      const line = decoder.decode(pending.subarray(0, nl));
      pending = pending.slice(nl + 1);
      return line;
    }
    if (stdinDone) throw new Error("wfe prelude: stdin closed before the header");
    readChunk();
  }
}

function readRest() {
  while (!stdinDone) readChunk();
  const text = decoder.decode(pending);
  pending = new Uint8Array(0);
  return text;
}

function writeAll(file, bytes) {
  let offset = 0;
  while (offset < bytes.length) {
    offset += apply(fileWriteSync, file, [bytes.subarray(offset)]);
  }
}

function describe(value) {
  if (typeof value === "string") return value;
  return Deno.inspect(value, { colors: false, depth: 8 });
}

function errorRecord(error) {
  if (error instanceof Error) {
    const permission = error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied;
    return {
      t: "error",
      name: error.name,
      message: String(error.message),
      stack: String(error.stack ?? ""),
      permission,
    };
  }
  return { t: "error", name: "", message: describe(error), stack: "", permission: false };
}

export async function run(loaders) {
  const header = JSON.parse(readLine());
  const channel = Deno.openSync(header.channel, { write: true });
  const send = (text) => writeAll(channel, apply(encode, encoder, [text + "\n"]));
  send('{"t":"ready"}');
  const dataText = readRest();

  const Wfe = Object.freeze({
    /** The workflow data, as a fresh copy on every call. */
    getData() {
      return JSON.parse(dataText);
    },
    /** Set the step output `name` to any JSON value (undefined becomes null). */
    setOutput(name, value) {
      if (
        typeof name !== "string" || !apply(testRegExp, OUTPUT_NAME, [name]) ||
        name === "steps" || name.startsWith("__")
      ) {
        throw new TypeError(
          "Wfe.setOutput: the output name must be a non-empty string: a letter or _ then letters, digits, _ or - " +
            "(at most 128), not starting with __ and not `steps`",
        );
      }
      const json = apply(stringify, JSON, [value]);
      send('{"t":"out","name":' + apply(stringify, JSON, [name]) + ',"value":' + (json ?? "null") + "}");
    },
    /** Log a line to the workflow's step log (not to stdout). */
    log(...args) {
      send(apply(stringify, JSON, [{ t: "log", text: args.map(describe).join(" ") }]));
    },
  });
  Object.defineProperty(globalThis, "Wfe", {
    value: Wfe,
    writable: false,
    configurable: false,
    enumerable: false,
  });

  const fail = (error) => {
    send(apply(stringify, JSON, [errorRecord(error)]));
    Deno.exit(1);
  };
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    fail(event.error ?? event.message);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fail(event.reason);
  });

  try {
    for (const load of loaders) await load();
  } catch (error) {
    fail(error);
  }
}

// Regenerates testdata/golden/wire_vectors.json: the exact frames the
// official Phoenix JavaScript client (npm phoenix, version pinned in
// package.json) produces for a set of client messages. phxgo's wire tests
// compare its encoder against these bytes without needing node.
//
//   cd testdata/js && npm ci && node golden_wire.mjs
//
// vsn 2.0.0 frames come from the client's own default encoder, reached
// through a Socket instance (Socket.encode). The JavaScript client ships no
// vsn 1.0.0 encoder: an application speaking 1.0.0 passes
// `encode: (msg, cb) => cb(JSON.stringify(msg))`, so those frames are
// JSON.stringify of the message object exactly as the client builds it
// (keys topic, event, payload, ref, join_ref; a heartbeat has no join_ref).

import { writeFileSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Socket } from "phoenix"

const out = fileURLToPath(new URL("../golden/wire_vectors.json", import.meta.url))
const pkg = JSON.parse(readFileSync(new URL("./node_modules/phoenix/package.json", import.meta.url)))

// No connection is made: the socket is only a way to reach the encoder.
const socket = new Socket("ws://127.0.0.1:1/socket", {})

const bytes = (...xs) => new Uint8Array(xs).buffer
const hex = buf => Buffer.from(buf).toString("hex")
const utf8 = s => new TextEncoder().encode(s).buffer

// Each case: join_ref and ref as the client has them (null for a message
// without one), topic, event, and either a JSON payload (any JSON value) or
// a binary payload (ArrayBuffer).
const cases = [
  { name: "heartbeat", ref: "1", topic: "phoenix", event: "heartbeat", payload: {} },
  { name: "join", join_ref: "1", ref: "1", topic: "room:lobby", event: "phx_join", payload: { device: "go", token: "t0k3n" } },
  { name: "push", join_ref: "1", ref: "2", topic: "room:lobby", event: "new_msg", payload: { body: "hello", n: 1, f: 1.5, big: 1e21, neg: -0.25, ok: true, nil: null, list: [1, "two", [3]] } },
  { name: "leave", join_ref: "3", ref: "17", topic: "room:lobby", event: "phx_leave", payload: {} },
  { name: "null join_ref", join_ref: null, ref: "5", topic: "room:lobby", event: "echo", payload: { x: 1 } },
  { name: "null ref", join_ref: "1", ref: null, topic: "room:lobby", event: "echo", payload: { x: 1 } },
  { name: "both null", join_ref: null, ref: null, topic: "t", event: "e", payload: {} },
  { name: "string payload", join_ref: "1", ref: "2", topic: "room:lobby", event: "echo", payload: "a string" },
  { name: "array payload", join_ref: "1", ref: "3", topic: "room:lobby", event: "echo", payload: [1, 2, 3] },
  { name: "number payload", join_ref: "1", ref: "4", topic: "room:lobby", event: "echo", payload: 42 },
  { name: "unicode topic", join_ref: "4", ref: "5", topic: "room:ünïcødé-🎉", event: "echo", payload: { ok: "✓" } },
  { name: "unicode event", join_ref: "4", ref: "6", topic: "room:日本語", event: "événement_🚀", payload: { text: "héllo wörld — 你好 — עברית" } },
  { name: "html and separators", join_ref: "1", ref: "7", topic: "room:<a&b>", event: "x\u2028y\u2029z</script>", payload: { html: "</script> & <b>", sep: "\u2028\u2029" } },
  { name: "escapes", join_ref: "a\"b\\c", ref: "tab\there", topic: "line\nbreak\r\b\f/", event: "ctl\u0000\u0001\u001f\u007f", payload: { s: "\"\\/\n\t\u0000\u001f" } },
  { name: "empty strings", join_ref: "", ref: "", topic: "", event: "", payload: {} },
  { name: "long ref", join_ref: "9".repeat(40), ref: "1".repeat(300), topic: "room:" + "x".repeat(300), event: "e", payload: {} },
  { name: "binary push", join_ref: "1", ref: "2", topic: "room:bin", event: "binary", binary: bytes(0, 1, 2, 0xfe, 0xff, 0x68, 0x65, 0x6c, 0x6c, 0x6f) },
  { name: "binary empty payload", join_ref: "1", ref: "4", topic: "room:bin", event: "echo", binary: bytes() },
  { name: "binary unicode", join_ref: "12", ref: "345", topic: "room:ünïcødé-🎉", event: "événement", binary: utf8("payload ✓") },
  { name: "binary without join_ref", ref: "9", topic: "room:bin", event: "e", binary: bytes(1, 2, 3) },
  { name: "binary 255-byte fields", join_ref: "j".repeat(255), ref: "r".repeat(255), topic: "t".repeat(255), event: "é".repeat(127) + "e", binary: bytes(7) },
  { name: "binary topic too long", join_ref: "1", ref: "2", topic: "t".repeat(256), event: "e", binary: bytes(0) },
]

const encode = msg => {
  let frame
  socket.encode(msg, f => { frame = f })
  return frame
}

const vectors = []
for (const c of cases) {
  // What the client's Push and heartbeat hand to the encoder. A missing
  // join_ref is left undefined, as in a heartbeat: JSON.stringify drops the
  // key from an object and writes null in an array, TextEncoder writes "".
  // (A null join_ref would be written "null" in a binary frame, which no
  // server reads as a missing ref; phxgo writes "" for it.)
  const msg = { topic: c.topic, event: c.event, payload: c.binary ?? c.payload, ref: c.ref ?? null }
  if (c.join_ref != null) { msg.join_ref = c.join_ref }
  const v = {
    name: c.name,
    join_ref: c.join_ref ?? null,
    ref: c.ref ?? null,
    topic: c.topic,
    event: c.event,
  }
  if (c.binary) {
    v.payload_hex = hex(c.binary)
    try {
      v.v2_binary_hex = hex(encode(msg))
    } catch (e) {
      v.v2_error = e.message
    }
  } else {
    v.payload = JSON.stringify(c.payload)
    v.v2_text = encode(msg)
    v.v1_text = JSON.stringify(msg)
  }
  vectors.push(v)
}

const doc = {
  generator: "testdata/js/golden_wire.mjs",
  phoenix_js_version: pkg.version,
  vectors,
}
writeFileSync(out, JSON.stringify(doc, null, 1) + "\n")
console.log(`wrote ${vectors.length} vectors to ${out}`)

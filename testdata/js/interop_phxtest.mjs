// Drives the official Phoenix JavaScript client against phxtest, the Go
// Phoenix-compatible test server, for phx/phxtest/interop_test.go.
//
// Usage: node interop_phxtest.mjs ws://127.0.0.1:PORT/socket [vsn]
// vsn is 2.0.0 (the default) or 1.0.0, for which the client sends and
// reads JSON objects, as phoenix.js did before 2.0.0.
// The server runs phxtest.DemoConfig plus a "ctl:*" channel whose "drop"
// event closes the TCP connection without a close frame. Every check prints
// one line "ok <name>" or "FAIL <name>: <why>"; the exit code is the number
// of failures (2 when the script itself breaks or times out).
import WebSocket from "ws"
import { Socket, Presence, LongPoll } from "phoenix"

const endpoint = process.argv[2]
if (!endpoint) { console.error("usage: interop_phxtest.mjs <socket url>"); process.exit(2) }

let failures = 0
const check = (name, cond, why = "") => {
  if (cond) { console.log(`ok ${name}`) } else { failures++; console.log(`FAIL ${name}: ${why}`) }
}
const deadline = setTimeout(() => { console.log("FAIL timeout: the script did not finish in 20 s"); process.exit(2) }, 20000)

const fast = { reconnectAfterMs: () => 20, rejoinAfterMs: () => 20, heartbeatIntervalMs: 1000, timeout: 5000 }
if (process.argv[3] === "1.0.0") {
  Object.assign(fast, { vsn: "1.0.0", encode: (msg, cb) => cb(JSON.stringify(msg)), decode: (raw, cb) => cb(JSON.parse(raw)) })
}

function connect(user, opts = {}) {
  const socket = new Socket(endpoint, { transport: WebSocket, params: { user }, ...fast, ...opts })
  socket.connect()
  return socket
}

// push resolves with [status, response] for ok, error and timeout.
function push(channel, event, payload, timeout) {
  return new Promise(resolve => {
    channel.push(event, payload, timeout)
      .receive("ok", r => resolve(["ok", r]))
      .receive("error", r => resolve(["error", r]))
      .receive("timeout", () => resolve(["timeout", null]))
  })
}

function join(channel) {
  return new Promise(resolve => {
    channel.join()
      .receive("ok", r => resolve(["ok", r]))
      .receive("error", r => resolve(["error", r]))
      .receive("timeout", () => resolve(["timeout", null]))
  })
}

// until polls cond on the event loop (no timers of our own to wait on).
function until(cond, ms = 5000) {
  return new Promise((resolve, reject) => {
    const start = Date.now()
    const tick = () => {
      if (cond()) return resolve()
      if (Date.now() - start > ms) return reject(new Error("condition not met in time"))
      setTimeout(tick, 5)
    }
    tick()
  })
}

const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b)

async function main() {
  // Join ok and error.
  const a = connect("js_a")
  const lobbyA = a.channel("room:lobby", { device: "js" })
  const presA = new Presence(lobbyA)
  let [st, resp] = await join(lobbyA)
  check("join ok", st === "ok" && eq(resp, { joined: "room:lobby", params: { device: "js" } }), JSON.stringify([st, resp]))
  const secret = a.channel("room:secret", {})
  ;[st, resp] = await join(secret)
  check("join error", st === "error" && eq(resp, { reason: "unauthorized" }), JSON.stringify([st, resp]))
  secret.leave()

  // Push replies: ok, error, timeout.
  ;[st, resp] = await push(lobbyA, "echo", { hello: "world", n: [1, 2] })
  check("push ok", st === "ok" && eq(resp, { hello: "world", n: [1, 2] }), JSON.stringify([st, resp]))
  ;[st, resp] = await push(lobbyA, "error", {})
  check("push error", st === "error" && eq(resp, { reason: "nope" }), JSON.stringify([st, resp]))
  ;[st, resp] = await push(lobbyA, "noreply", {}, 100)
  check("push timeout", st === "timeout", JSON.stringify([st, resp]))

  // Presence through the JS Presence, and broadcasts.
  await until(() => presA.list().length === 1)
  const b = connect("js_b")
  const lobbyB = b.channel("room:lobby", { device: "js2" })
  const gotB = []
  lobbyB.on("new_msg", m => gotB.push(m))
  ;[st] = await join(lobbyB)
  check("second join", st === "ok")
  const keys = () => presA.list((k, p) => k).sort()
  await until(() => eq(keys(), ["js_a", "js_b"])).then(() => check("presence after join", true),
    e => check("presence after join", false, JSON.stringify(keys())))
  ;[st] = await push(lobbyB, "update_meta", { status: "away" })
  const metaB = () => (presA.list((k, p) => k === "js_b" ? p.metas : null).filter(Boolean)[0] || [])
  await until(() => metaB().length === 1 && metaB()[0].status === "away" && metaB()[0].device === "js2")
    .then(() => check("presence after update", st === "ok"),
      e => check("presence after update", false, JSON.stringify(metaB())))
  ;[st] = await push(lobbyA, "new_msg", { body: "hi from A" })
  await until(() => gotB.length === 1).then(() => check("broadcast delivery", st === "ok" && eq(gotB[0], { body: "hi from A" })),
    e => check("broadcast delivery", false, JSON.stringify(gotB)))
  await new Promise(resolve => lobbyB.leave().receive("ok", resolve))
  await until(() => eq(keys(), ["js_a"])).then(() => check("presence after leave", true),
    e => check("presence after leave", false, JSON.stringify(keys())))
  b.disconnect()

  // Reconnect and rejoin after the server drops the TCP connection.
  let joins = 0
  const c = connect("js_c")
  const lobbyC = c.channel("room:lobby", {})
  lobbyC.join().receive("ok", () => joins++)
  const ctl = c.channel("ctl:1", {})
  await join(ctl)
  await until(() => joins === 1)
  let opens = 0
  c.onOpen(() => opens++)
  ctl.push("drop", {})
  await until(() => joins === 2 && opens === 1).then(() => check("rejoin after drop", true),
    e => check("rejoin after drop", false, `joins=${joins} opens=${opens}`))
  ;[st, resp] = await push(lobbyC, "echo", { after: "reconnect" })
  check("push after rejoin", st === "ok" && eq(resp, { after: "reconnect" }), JSON.stringify([st, resp]))
  c.disconnect()

  // The long-poll transport. phoenix.js's LongPoll always uses its 2.0.0
  // serializer (it ignores encode and decode), so it runs on 2.0.0 alone.
  const lp = new Socket(endpoint, { transport: LongPoll, params: { user: "js_lp" }, ...fast, vsn: "2.0.0" })
  lp.connect()
  const lobbyLP = lp.channel("room:lobby", { device: "lp" })
  const gotLP = []
  lobbyLP.on("new_msg", m => gotLP.push(m))
  const presLP = new Presence(lobbyLP)
  ;[st, resp] = await join(lobbyLP)
  check("longpoll join", st === "ok" && eq(resp, { joined: "room:lobby", params: { device: "lp" } }), JSON.stringify([st, resp]))
  ;[st, resp] = await push(lobbyLP, "echo", { via: "longpoll" })
  check("longpoll push", st === "ok" && eq(resp, { via: "longpoll" }), JSON.stringify([st, resp]))
  await push(lobbyA, "new_msg", { body: "to longpoll" })
  await until(() => gotLP.length === 1 && presLP.list().length === 2)
    .then(() => check("longpoll broadcast and presence", eq(gotLP[0], { body: "to longpoll" })),
      e => check("longpoll broadcast and presence", false, JSON.stringify([gotLP, presLP.list()])))
  lp.disconnect()
  a.disconnect()
}

main().then(() => { clearTimeout(deadline); process.exit(failures) },
  err => { console.log(`FAIL script: ${err && err.stack || err}`); process.exit(2) })

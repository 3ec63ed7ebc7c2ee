// Drives the official Phoenix JavaScript Presence for phxgo's differential
// presence test (presence/differential_test.go).
//
// Input, JSON Lines on stdin:
//   {"op":"reset"}                        a fresh Presence on a fresh channel
//   {"op":"msg","event":E,"joinRef":J,"raw":R}
//       the channel's join ref becomes J (null: not joined), then the channel
//       delivers event E with payload JSON.parse(R). R is the payload text, so
//       key order and repeated keys reach JSON.parse as the server wrote them.
// Output, one JSON line per input line:
//   {"events":[["join",key,current,new] | ["leave",key,current,left] | ["sync"]],
//    "state":[[key,presence],...], "pending":n}
// Callback arguments are serialised when the callback runs, because the
// Presence keeps changing the same objects afterwards.
import readline from "node:readline"
import { Presence } from "phoenix"

function fakeChannel() {
  const handlers = new Map()
  return {
    ref: null,
    on(event, cb) { handlers.set(event, cb) },
    joinRef() { return this.ref },
    deliver(event, payload) {
      const cb = handlers.get(event)
      if (cb) cb(payload)
    },
  }
}

let channel, presence, events

function reset() {
  channel = fakeChannel()
  presence = new Presence(channel)
  presence.onJoin((key, current, newPres) => {
    events.push(["join", key, clone(current), clone(newPres)])
  })
  presence.onLeave((key, current, leftPres) => {
    events.push(["leave", key, clone(current), clone(leftPres)])
  })
  presence.onSync(() => { events.push(["sync"]) })
}

function clone(v) { return v === undefined ? null : JSON.parse(JSON.stringify(v)) }

const out = []
function flush() {
  if (out.length > 0) {
    process.stdout.write(out.join(""))
    out.length = 0
  }
}

reset()
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on("line", line => {
  if (line === "") return
  const cmd = JSON.parse(line)
  events = []
  if (cmd.op === "reset") {
    reset()
  } else if (cmd.op === "msg") {
    channel.ref = cmd.joinRef
    channel.deliver(cmd.event, JSON.parse(cmd.raw))
  } else {
    throw new Error("unknown op " + cmd.op)
  }
  const state = presence.list((key, pres) => [key, pres])
  out.push(JSON.stringify({ events, state, pending: presence.pendingDiffs.length }) + "\n")
  if (out.length >= 256) flush()
})
rl.on("close", flush)

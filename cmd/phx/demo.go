package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
)

const demoUsage = `usage: phx demo [-speed X] [-addr host:port]

Starts the Phoenix-compatible dev server of 'phx serve' in this process and
three simulated users, ann, bob and cy, who join room:lobby, chat, come and
go. You join the room too and see joins with their replies, pushes with
replies (ok and error), broadcasts, and presence changes, as the library
delivers them. Then dee, driven by a managed.Client, writes while the server
refuses its token: the pushes wait in the client's queue and go out in order
once it connects and joins by itself; a push the server never answers times
out, counts down to its retry and is dropped. Everything goes through
phxgo's public API, as in your own program. Exits 0 when the story is over,
in about fourteen seconds.
`

// demo is the state of one run; a single goroutine drives it, so the output
// follows the story in order. It folds presence with a presence.Machine fed
// from the same subscription as the broadcasts (rather than a presence.Track
// stream beside it) so that broadcasts and presence changes print in the
// order they arrived.
type demo struct {
	ctx     context.Context
	out     io.Writer
	start   time.Time
	speed   float64
	url     string
	watch   *phx.Subscription // your own view of room:lobby
	machine *presence.Machine
	users   map[string]*demoUser
	seen    int // broadcasts seen
	pushes  int

	dee        *managed.Client
	deeEvents  <-chan managed.Event // nil until dee starts
	deeRefused atomic.Bool          // the server refuses dee's token while set
	refusals   int                  // dee's refused connection attempts
}

type demoUser struct {
	sock *phx.Socket
	ch   *phx.Channel
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", demoUsage)
	speed := fs.Float64("speed", 1, "pace: 1 takes about fourteen seconds, 10 is ten times faster, 0 does not pause")
	addr := fs.String("addr", "127.0.0.1:0", "server listen address (connect 'phx listen' to it while the demo runs)")
	if _, err := parseArgs(fs, args); err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	if *speed < 0 {
		fmt.Fprintln(stderr, "phx demo: -speed must be 0 or more")
		return exitUsage
	}
	srv, err := phxtest.Start(*addr, phxtest.DemoConfig())
	if err != nil {
		fmt.Fprintf(stderr, "phx demo: starting the server: %v\n", err)
		return exitFailure
	}
	defer srv.Close()

	d := &demo{ctx: ctx, out: stdout, start: time.Now(), speed: *speed, url: srv.URL(),
		machine: presence.NewMachine(presence.Options{Updates: true}), users: map[string]*demoUser{}}
	defer d.closeAll()
	if err := d.story(); err != nil {
		if ctx.Err() != nil { // whatever the step was doing when interrupted
			fmt.Fprintln(stderr, "phx demo: interrupted")
			return exitOK
		}
		fmt.Fprintf(stderr, "phx demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func (d *demo) story() error {
	d.say("server", "Phoenix-compatible server listening at %s", d.url)

	you, err := d.connect("you", "terminal")
	if err != nil {
		return err
	}
	// everything you receive on room:lobby
	if d.watch, err = you.ch.Subscribe(d.ctx); err != nil {
		return err
	}
	if _, err := you.ch.Join(d.ctx); err != nil {
		return err
	}
	d.say("you", "joined room:lobby; now watching its broadcasts and presence")
	if err := d.until(presenceOf("you", true)); err != nil {
		return err
	}

	steps := []struct {
		at   float64 // seconds into the story at speed 1
		step func() error
	}{
		{1.0, func() error { return d.join("ann", "phone") }},
		{2.0, func() error { return d.join("bob", "laptop") }},
		{3.0, func() error { return d.chat("ann", "hi bob!") }},
		{4.0, func() error { return d.chat("bob", "hey ann, who else is around?") }},
		{5.0, func() error { return d.join("cy", "tablet") }},
		{5.5, func() error { return d.push("cy", "echo", map[string]any{"ping": 1}) }},
		{6.0, func() error { return d.push("cy", "error", nil) }},
		{6.5, func() error { return d.away("bob") }},
		{7.0, func() error { return d.leave("bob") }},
		{7.5, func() error { return d.shout("ann", "bye bob (everyone but me sees this)") }},
		{8.0, func() error { return d.drop("cy") }},
		{9.0, func() error { return d.rejoin("bob") }},
		{9.5, func() error { return d.chat("bob", "back again") }},
		{10.0, d.deeOffline},
		{11.0, d.deeOnline},
		{11.5, d.deeNoReply},
		{12.5, d.deeCountdown},
		{13.0, d.deeCountdown},
		{13.5, d.deeDrop},
	}
	for _, s := range steps {
		if err := d.waitUntil(s.at); err != nil {
			return err
		}
		if err := s.step(); err != nil {
			return err
		}
	}
	d.say("demo", "done: %d pushes answered, %d broadcasts seen; present now: %s",
		d.pushes, d.seen, strings.Join(d.machine.State().Keys(), ", "))
	return nil
}

// connect opens a user's socket (the user is named by a connect parameter,
// as the demo app expects) and prepares its room:lobby channel.
func (d *demo) connect(name, device string) (*demoUser, error) {
	sock, err := phx.Connect(d.ctx, d.url, &phx.Config{Params: url.Values{"user": {name}}})
	if err != nil {
		return nil, err
	}
	u := &demoUser{sock: sock, ch: sock.Channel("room:lobby", map[string]string{"device": device})}
	d.users[name] = u
	return u, nil
}

func (d *demo) join(name, device string) error {
	u, err := d.connect(name, device)
	if err != nil {
		return err
	}
	resp, err := u.ch.Join(d.ctx)
	if err != nil {
		return fmt.Errorf("%s joining: %w", name, err)
	}
	d.say(name, "join room:lobby → ok %s", resp)
	return d.until(presenceOf(name, true))
}

func (d *demo) chat(name, body string) error {
	if err := d.push(name, "new_msg", map[string]string{"user": name, "body": body}); err != nil {
		return err
	}
	return d.until(broadcastOf("new_msg"))
}

func (d *demo) shout(name, body string) error {
	if err := d.push(name, "broadcast_from", map[string]string{"user": name, "body": body}); err != nil {
		return err
	}
	return d.until(broadcastOf("broadcast_from"))
}

// push prints a push and its one outcome.
func (d *demo) push(name, event string, payload any) error {
	b, _ := json.Marshal(payload)
	if payload == nil {
		b = []byte("{}")
	}
	reply, err := d.users[name].ch.Push(d.ctx, event, payload)
	if re, ok := phx.AsReplyError(err); ok {
		d.pushes++
		d.say(name, "push %s %s → %s %s", event, b, re.Status, re.Response)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s pushing %s: %w", name, event, err)
	}
	d.pushes++
	d.say(name, "push %s %s → %s %s", event, b, reply.Status, reply.Response)
	return nil
}

func (d *demo) away(name string) error {
	if err := d.push(name, "update_meta", map[string]string{"status": "away"}); err != nil {
		return err
	}
	return d.until(func(ev presence.Event) bool {
		u, ok := ev.(presence.Update)
		return ok && u.Key == name
	})
}

func (d *demo) leave(name string) error {
	if err := d.users[name].ch.Leave(d.ctx); err != nil {
		return fmt.Errorf("%s leaving: %w", name, err)
	}
	d.say(name, "left room:lobby (socket still open)")
	return d.until(presenceOf(name, false))
}

func (d *demo) rejoin(name string) error {
	u := d.users[name]
	u.ch = u.sock.Channel("room:lobby", map[string]string{"device": "laptop"}) // a Channel joins once
	resp, err := u.ch.Join(d.ctx)
	if err != nil {
		return fmt.Errorf("%s rejoining: %w", name, err)
	}
	d.say(name, "join room:lobby again → ok %s", resp)
	return d.until(presenceOf(name, true))
}

func (d *demo) drop(name string) error {
	u := d.users[name]
	_ = u.sock.Close()
	delete(d.users, name)
	d.say(name, "closed the connection without leaving")
	return d.until(presenceOf(name, false))
}

func (d *demo) closeAll() {
	for _, u := range d.users {
		_ = u.sock.Close()
	}
	if d.dee != nil {
		_ = d.dee.Close()
	}
}

// waitUntil paces the story, printing what you receive meanwhile.
func (d *demo) waitUntil(at float64) error {
	if d.speed == 0 {
		return nil
	}
	wait := time.Until(d.start.Add(time.Duration(at / d.speed * float64(time.Second))))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-t.C:
			return nil
		case m, ok := <-d.watch.C():
			if !ok {
				return fmt.Errorf("your subscription ended: %v", d.watch.Err())
			}
			if _, err := d.observe(m); err != nil {
				return err
			}
		case ev, ok := <-d.deeEvents:
			if !ok {
				return errors.New("dee's event stream ended")
			}
			d.observeDee(ev)
		}
	}
}

// until prints what you and dee receive until every one of wants has been
// satisfied by an event, so that each step's effects are shown right after
// the step, whatever order they arrive in.
func (d *demo) until(wants ...func(presence.Event) bool) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for len(wants) > 0 {
		var evs []presence.Event
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-t.C:
			return errors.New("an expected event did not arrive within 10s")
		case m, ok := <-d.watch.C():
			if !ok {
				return fmt.Errorf("your subscription ended: %v", d.watch.Err())
			}
			var err error
			if evs, err = d.observe(m); err != nil {
				return err
			}
		case ev, ok := <-d.deeEvents:
			if !ok {
				return errors.New("dee's event stream ended")
			}
			d.observeDee(ev)
			evs = []presence.Event{deeEvent{ev: ev}}
		}
		for _, ev := range evs {
			wants = slices.DeleteFunc(wants, func(want func(presence.Event) bool) bool { return want(ev) })
		}
	}
	return nil
}

// broadcastEvent stands for a broadcast in until's predicates.
type broadcastEvent struct {
	presence.Event
	name, body string
}

func broadcastOf(event string) func(presence.Event) bool {
	return func(ev presence.Event) bool {
		b, ok := ev.(broadcastEvent)
		return ok && b.name == event
	}
}

func presenceOf(key string, joined bool) func(presence.Event) bool {
	return func(ev presence.Event) bool {
		switch e := ev.(type) {
		case presence.Join:
			return joined && e.Key == key
		case presence.Leave:
			return !joined && e.Key == key && len(e.Current.Metas) == 0
		}
		return false
	}
}

// observe prints one message you received and returns what it meant.
func (d *demo) observe(m phx.Message) ([]presence.Event, error) {
	switch m.Event {
	case presence.DefaultStateEvent, presence.DefaultDiffEvent:
		evs, err := d.machine.Apply(presence.Input{Event: m.Event, Payload: m.Payload, JoinRef: m.JoinRef})
		if err != nil {
			return nil, err
		}
		online := strings.Join(d.machine.State().Keys(), ", ")
		for _, ev := range evs {
			switch e := ev.(type) {
			case presence.Join:
				if metas := newMetas(e); len(metas) > 0 {
					d.say("presence", "+ %s (%s)   online: %s", e.Key, device(metas[0]), online)
				}
			case presence.Leave:
				if len(e.Current.Metas) == 0 {
					d.say("presence", "- %s   online: %s", e.Key, online)
				}
			case presence.Update:
				d.say("presence", "~ %s now %s", e.Key, metaSummary(e.New))
			}
		}
		return evs, nil
	}
	d.seen++
	d.say("broadcast", "%s %s", m.Event, m.Payload)
	var msg struct{ Body string }
	_ = json.Unmarshal(m.Payload, &msg) // a payload without a body matches no body
	return []presence.Event{broadcastEvent{name: m.Event, body: msg.Body}}, nil
}

func device(m presence.Meta) string {
	var meta struct{ Device string }
	if m.Decode(&meta) != nil || meta.Device == "" {
		return "?"
	}
	return meta.Device
}

func (d *demo) say(who, format string, a ...any) {
	fmt.Fprintf(d.out, "%5.1fs  %-9s %s\n", time.Since(d.start).Seconds(), who, fmt.Sprintf(format, a...))
}
